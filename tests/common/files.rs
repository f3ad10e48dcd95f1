//! Config files for the bridge: YAML written to a temp dir, replaceable atomically so a running
//! bridge that watches the file never reads half a file.

use std::path::{Path, PathBuf};

/// A YAML file in its own temp dir (removed on drop).
pub struct YamlFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl YamlFile {
    /// Writes `contents` to `<fresh temp dir>/config.yaml`.
    pub fn new(contents: &str) -> YamlFile {
        let dir = tempfile::Builder::new()
            .prefix("kb-config-")
            .tempdir_in(super::scratch_dir())
            .expect("create temp dir for YAML");
        let path = dir.path().join("config.yaml");
        let file = YamlFile { dir, path };
        file.write(contents);
        file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the contents with a write to a sibling file and a rename (atomic on one filesystem).
    pub fn write(&self, contents: &str) {
        let tmp = self.dir.path().join(".config.yaml.tmp");
        std::fs::write(&tmp, contents).expect("write temp YAML");
        std::fs::rename(&tmp, &self.path).expect("rename YAML into place");
    }
}

/// Shorthand for [`YamlFile::new`].
pub fn write_yaml(contents: &str) -> YamlFile {
    YamlFile::new(contents)
}
