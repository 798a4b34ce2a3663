//! Folder names: arbitrary levels and delimiter through `names::server_name` must give a
//! name with exactly one level per input level, none containing the delimiter, `*`, `%`,
//! CR, LF or NUL, none starting with `.` or `~`; modified UTF-7 must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/core/folder_invariants.rs"]
mod folder_invariants;

fuzz_target!(|input: (Vec<String>, Option<char>, bool, bool)| {
    let (levels, delimiter, utf8, no_dots) = input;
    for level in &levels {
        if let Err(e) = folder_invariants::check_mutf7(level) {
            panic!("modified UTF-7 does not round-trip: {e}");
        }
    }
    if let Err(e) = folder_invariants::check_server_name(&levels, delimiter, utf8, no_dots) {
        panic!("unsafe folder name: {e}");
    }
});
