//! The README shows examples/adopt's files exactly as they are: a reader
//! who copies them gets what CI builds and tests.

use crate::harness::repo;

#[test]
fn the_readme_shows_the_adopt_files_as_they_are() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for file in ["xtask/src/main.rs", "tests/migrations.rs"] {
        let text = std::fs::read_to_string(repo().join("examples/adopt").join(file)).unwrap();
        assert!(readme.contains(text.trim_end()), "README.md does not show examples/adopt/{file} as it is");
    }
}
