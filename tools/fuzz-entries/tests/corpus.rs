//! The committed fuzz corpus, replayed on stable Rust: every input in `fuzz/corpus/{target}/`
//! (the seeds, what the fuzzer kept, and every input that once crashed a target) runs through
//! the target's entry function, as `cargo fuzz run` would run it, so `make test` exercises the
//! corpus without the fuzzer.

use std::path::{Path, PathBuf};

use rnd_fuzz_entries::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_corpus_input_runs_through_its_target_without_a_panic() {
    for (name, run) in TARGETS {
        // GIVEN the committed corpus of the target
        let inputs = files_in(&fuzz_dir().join("corpus").join(name));
        assert!(!inputs.is_empty(), "{name} has a seed corpus");
        for input in inputs {
            let data = std::fs::read(&input).expect("a corpus file reads");
            // WHEN it runs through the target's entry function
            let outcome = std::panic::catch_unwind(|| run(&data));
            // THEN nothing panics (neither the code under test nor the target's assertions)
            assert!(outcome.is_ok(), "{name} panics on {}", input.display());
        }
    }
}

#[test]
fn each_entry_function_has_its_fuzz_target_and_each_fuzz_target_its_entry_function() {
    // GIVEN the fuzz targets in fuzz/fuzz_targets/
    let mut on_disk: Vec<String> = files_in(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    on_disk.sort();
    // WHEN they are compared with the entry functions
    let mut entries: Vec<String> = TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    entries.sort();
    // THEN they are the same set
    assert_eq!(on_disk, entries);
}
