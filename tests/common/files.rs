//! Config files for the bridge (YAML for `run`, the contract JSON for `dataplane`): written to a
//! temp dir, replaceable atomically so a running bridge that watches the file never reads half a
//! file.

use std::path::{Path, PathBuf};

/// A config file in its own temp dir (removed on drop).
pub struct ConfigFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

/// The YAML files of `run`.
pub type YamlFile = ConfigFile;

impl ConfigFile {
    /// Writes `contents` to `<fresh temp dir>/config.yaml`.
    pub fn new(contents: &str) -> ConfigFile {
        ConfigFile::named("config.yaml", contents.as_bytes())
    }

    /// Writes `contents` to `<fresh temp dir>/<file_name>`.
    pub fn named(file_name: &str, contents: &[u8]) -> ConfigFile {
        let dir = tempfile::Builder::new()
            .prefix("kb-config-")
            .tempdir_in(super::scratch_dir())
            .expect("create temp dir for a config file");
        let path = dir.path().join(file_name);
        let file = ConfigFile { dir, path };
        file.write_bytes(contents);
        file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the contents with a write to a sibling file and a rename (atomic on one filesystem).
    pub fn write(&self, contents: &str) {
        self.write_bytes(contents.as_bytes());
    }

    pub fn write_bytes(&self, contents: &[u8]) {
        let tmp = self.dir.path().join(".config.tmp");
        std::fs::write(&tmp, contents).expect("write temp config file");
        std::fs::rename(&tmp, &self.path).expect("rename config file into place");
    }
}

/// Shorthand for [`YamlFile::new`].
pub fn write_yaml(contents: &str) -> YamlFile {
    YamlFile::new(contents)
}
