//! `manifests/` against the code: the CRDs there are exactly what `kafka-bridge crds` prints
//! (regenerate with `cargo run -- crds > manifests/100-crds.yaml`), and every manifest parses
//! as Kubernetes objects.

use std::path::{Path, PathBuf};

use kafka_bridge::resources::crds;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

#[test]
fn crds_in_manifests_match_the_rust_types() {
    let path = manifests_dir().join("100-crds.yaml");
    let on_disk = std::fs::read_to_string(&path).unwrap();
    let generated = crds::manifest().unwrap();
    assert!(
        on_disk == generated,
        "{} differs from `kafka-bridge crds`; regenerate it with \
         `cargo run -- crds > manifests/100-crds.yaml`",
        path.display()
    );
}
