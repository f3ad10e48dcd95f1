//! Reading manifests: files and directories of `.yaml`, `.yml` and `.json`, split into documents.
//!
//! A directory contributes its own manifest files, sorted by name, not its subdirectories (as
//! `kubectl apply -f DIR` without `-R`). A file named explicitly is read whatever its extension:
//! `.json` as JSON, anything else as YAML (one file may hold many `---`-separated documents).
//! Empty documents are skipped but still counted, so indexes match positions in the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{DocRef, FeedError};

/// One non-empty document of a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub at: DocRef,
    pub value: serde_json::Value,
}

impl Document {
    /// The string at `field` of the document root (`apiVersion`, `kind`), if any.
    pub fn str_field(&self, field: &str) -> Option<&str> {
        self.value.get(field).and_then(serde_json::Value::as_str)
    }

    /// `metadata.<field>` as a string, if any.
    pub fn meta_str(&self, field: &str) -> Option<&str> {
        self.value.get("metadata")?.get(field)?.as_str()
    }
}

/// Reads every document of `paths`, in order: arguments as given, directory entries by name.
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<Document>, FeedError> {
    let mut documents = Vec::new();
    for path in paths {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file).map_err(|source| FeedError::Read {
                path: file.clone(),
                source,
            })?;
            documents.extend(parse_documents(&file, &text)?);
        }
    }
    Ok(documents)
}

/// The files `path` stands for: itself, or a directory's manifest files sorted by name.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, FeedError> {
    let read_err = |source| FeedError::Read {
        path: path.to_owned(),
        source,
    };
    if !std::fs::metadata(path).map_err(read_err)?.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let entry_path = entry.map_err(read_err)?.path();
        // Follows symlinks, so a linked manifest counts and a linked directory does not.
        let is_file = std::fs::metadata(&entry_path)
            .map(|m| m.is_file())
            .unwrap_or(false);
        if is_file && is_manifest(&entry_path) {
            files.push(entry_path);
        }
    }
    files.sort();
    if files.is_empty() {
        tracing::warn!(
            "{}: no .yaml, .yml or .json files in this directory",
            path.display()
        );
    }
    Ok(files)
}

fn is_manifest(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|m| e.eq_ignore_ascii_case(m))
    })
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Splits one file's text into its non-empty documents.
///
/// Documents are read through `serde_yaml_ng::Value`, which rejects duplicate keys (as
/// Kubernetes' strict decoding does) and resolves `<<` merge keys, then become JSON values.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Document>, FeedError> {
    if is_json(path) {
        let value: serde_yaml_ng::Value =
            serde_json::from_str(text).map_err(|e| FeedError::Syntax {
                path: path.to_owned(),
                format: "JSON",
                line: Some(e.line()),
                message: e.to_string(),
            })?;
        return Ok(to_document(path, 0, value)?.into_iter().collect());
    }
    let mut documents = Vec::new();
    for (index, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml_ng::Value::deserialize(de).map_err(|e| {
            let line = e.location().map(|l| l.line());
            let mut message = e.to_string();
            // Parser errors say where; errors raised while building the value (duplicate keys)
            // do not, though their location is known (the start of the mapping).
            if let Some(line) = line.filter(|_| !message.contains(" line ")) {
                message = format!("{message} at line {line}");
            }
            FeedError::Syntax {
                path: path.to_owned(),
                format: "YAML",
                line,
                message,
            }
        })?;
        documents.extend(to_document(path, index, value)?);
    }
    Ok(documents)
}

/// The document, unless it is empty.
fn to_document(
    path: &Path,
    index: usize,
    mut value: serde_yaml_ng::Value,
) -> Result<Option<Document>, FeedError> {
    if value.is_null() {
        return Ok(None);
    }
    let at = DocRef {
        path: path.to_owned(),
        index,
    };
    let invalid = |message: String| FeedError::Syntax {
        path: path.to_owned(),
        format: "YAML",
        line: None,
        message: format!("document {}: {message}", index + 1),
    };
    value.apply_merge().map_err(|e| invalid(e.to_string()))?;
    // Fails only on what JSON cannot hold, such as a null or sequence used as a map key.
    let value = serde_json::to_value(value).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(Document { at, value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(docs: &[Document]) -> Vec<(usize, &str)> {
        docs.iter()
            .map(|d| (d.at.index, d.str_field("kind").unwrap_or("-")))
            .collect()
    }

    #[test]
    fn splits_multi_document_yaml_and_skips_empty_documents() {
        let text =
            "---\nkind: A\n---\n---\n# only a comment\n---\nkind: B\nmetadata: {name: b}\n...\n";
        let docs = parse_documents(Path::new("m.yaml"), text).unwrap();
        assert_eq!(kinds(&docs), [(0, "A"), (3, "B")]);
        assert_eq!(docs[1].meta_str("name"), Some("b"));
        assert_eq!(docs[1].at.to_string(), "m.yaml (document 4)");
        assert!(parse_documents(Path::new("e.yaml"), "").unwrap().is_empty());
        assert!(parse_documents(Path::new("e.yml"), "---\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn merge_keys_are_resolved() {
        let text = "base: &b {retry: 3}\nspec: {<<: *b, timeout: PT1S}\n";
        let docs = parse_documents(Path::new("m.yaml"), text).unwrap();
        assert_eq!(
            docs[0].value["spec"],
            serde_json::json!({"retry": 3, "timeout": "PT1S"})
        );
    }

    #[test]
    fn json_files_are_one_document() {
        let docs = parse_documents(Path::new("s.JSON"), r#"{"kind": "Secret"}"#).unwrap();
        assert_eq!(kinds(&docs), [(0, "Secret")]);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let cases = [
            (
                "bad.yaml",
                "kind: A\n---\nkind: B\nspec:\n  x: [1, 2\n",
                "YAML",
                6,
            ),
            // Duplicate keys are located at the start of their mapping.
            ("bad.yaml", "x: 0\ny:\n  a: 1\n  a: 2\n", "YAML", 3),
            ("bad.json", "{\n  \"kind\": \"A\",\n}", "JSON", 3),
            (
                "dup.json",
                "{\"kind\": \"A\",\n \"kind\": \"B\"}",
                "JSON",
                2,
            ),
        ];
        for (file, text, format, want_line) in cases {
            let err = parse_documents(Path::new(file), text).unwrap_err();
            let FeedError::Syntax { line, .. } = &err else {
                panic!("{err}")
            };
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("{file}: invalid {format}")),
                "{msg}"
            );
            assert_eq!(*line, Some(want_line), "{msg}");
            assert!(msg.contains(&format!("line {want_line}")), "{msg}");
        }
    }

    #[test]
    fn reads_files_and_directories_without_recursing() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("b.yaml", "kind: B1\n---\nkind: B2\n");
        write("a.yml", "kind: A\n");
        write("c.json", r#"{"kind": "C"}"#);
        write("notes.txt", "kind: Ignored\n");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/d.yaml"), "kind: Nested\n").unwrap();
        let extra = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(extra.path(), "kind: Explicit\n").unwrap();

        let docs = read_documents(&[dir.path().to_owned(), extra.path().to_owned()]).unwrap();
        let got: Vec<_> = docs.iter().map(|d| d.str_field("kind").unwrap()).collect();
        assert_eq!(got, ["A", "B1", "B2", "C", "Explicit"]);
        assert_eq!(
            docs[2].at,
            DocRef {
                path: dir.path().join("b.yaml"),
                index: 1
            }
        );
    }

    #[test]
    fn missing_path_is_a_read_error_naming_it() {
        let err = read_documents(&[PathBuf::from("/nonexistent/x.yaml")]).unwrap_err();
        assert!(matches!(err, FeedError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/x.yaml"), "{err}");
    }
}
