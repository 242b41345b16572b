//! Moving a CNI's runtime directory into the backup across filesystems (/run is a tmpfs, the
//! backup is on the node's disk): regular files move, sockets and FIFOs (endpoints of the
//! CNI's stopped processes, not state) are left out, and nothing stays behind.

#![allow(clippy::unwrap_used)] // a panic here is a failed test

use cniswap_node::clean::move_path;
use std::os::unix::net::UnixListener;
use std::path::Path;

#[test]
fn a_runtime_directory_with_a_socket_moves_across_filesystems() {
    // /dev/shm is a tmpfs on Linux, the temporary directory is not (rename fails across them).
    let run = tempfile::tempdir_in("/dev/shm").unwrap();
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let from = run.path().join("cilium");
    std::fs::create_dir_all(from.join("state")).unwrap();
    std::fs::write(from.join("state/endpoints.json"), "{}").unwrap();
    let _listener = UnixListener::bind(from.join("health.sock")).unwrap();
    let to = disk.path().join("cilium");
    move_path(&from, &to).unwrap();
    assert!(!from.exists(), "the source is gone");
    assert_eq!(
        std::fs::read_to_string(to.join("state/endpoints.json")).unwrap(),
        "{}"
    );
    assert!(!Path::new(&to.join("health.sock")).exists());
}
