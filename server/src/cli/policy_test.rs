//! `assent-server policy-test`: reads compliance scenarios from JSON and JSON Lines files, runs
//! each through the engine and reports `PASS`, `FAIL` and `ERROR` lines, then `N passed, M
//! failed`. The engine parses and runs one scenario; the files are read here.

use std::io::Write;
use std::path::{Path, PathBuf};

use assent_engine::scenario::Scenario;
use assent_engine::CompiledPolicy;

/// Running totals of a policy test.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

/// Runs every scenario in `paths` (files, or directories read at their top level for `*.json`
/// and `*.jsonl`), writing a line per scenario (only failures and errors when `quiet`) and the
/// closing `N passed, M failed` line to `out`.
pub fn policy_test(paths: &[PathBuf], quiet: bool, out: &mut impl Write) -> std::io::Result<Tally> {
    let default_policy = CompiledPolicy::default();
    let mut tally = Tally::default();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match scenario_files(path) {
                Ok(mut found) => files.append(&mut found),
                Err(reason) => {
                    writeln!(out, "ERROR {}: {reason}", path.display())?;
                    tally.failed += 1;
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    for file in &files {
        run_file(file, &default_policy, quiet, &mut tally, out)?;
    }
    writeln!(out, "{} passed, {} failed", tally.passed, tally.failed)?;
    Ok(tally)
}

fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

fn run_file(
    file: &Path,
    policy: &CompiledPolicy,
    quiet: bool,
    tally: &mut Tally,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let unreadable = |e: std::io::Error, out: &mut dyn Write, tally: &mut Tally| {
        tally.failed += 1;
        writeln!(out, "ERROR {}: {e}", file.display())
    };
    let opened = match std::fs::File::open(file) {
        Ok(opened) => opened,
        Err(e) => return unreadable(e, out, tally),
    };
    let mut report = |location: String,
                      parsed: Result<Scenario, String>,
                      out: &mut dyn Write|
     -> std::io::Result<()> {
        match parsed.map(|s| s.run(policy)) {
            Ok((id, None)) => {
                tally.passed += 1;
                if !quiet {
                    writeln!(out, "PASS {id}")?;
                }
            }
            Ok((id, Some(problem))) => {
                tally.failed += 1;
                writeln!(out, "FAIL {id}: {problem}")?;
            }
            Err(reason) => {
                tally.failed += 1;
                writeln!(out, "ERROR {location}: {reason}")?;
            }
        }
        Ok(())
    };
    if file.extension().is_some_and(|e| e == "jsonl") {
        // Line by line: a generated suite may be far larger than memory should hold.
        let reader = std::io::BufReader::new(opened);
        for (number, line) in std::io::BufRead::lines(reader).enumerate() {
            let location = format!("{}:{}", file.display(), number + 1);
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => report(location, Scenario::parse(&line), out)?,
                Err(e) => report(location, Err(e.to_string()), out)?,
            }
        }
    } else {
        let mut text = String::new();
        match std::io::Read::read_to_string(&mut std::io::BufReader::new(opened), &mut text) {
            Ok(_) => report(file.display().to_string(), Scenario::parse(&text), out)?,
            Err(e) => report(file.display().to_string(), Err(e.to_string()), out)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own scenarios (server/tests/scenarios), written from the rules as a second reading.
    #[test]
    fn the_projects_own_scenarios_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
        let mut out = Vec::new();
        let tally = policy_test(&[dir], true, &mut out).unwrap();
        let report = String::from_utf8(out).unwrap();
        assert_eq!(tally.failed, 0, "{report}");
        assert!(tally.passed > 0, "{report}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_line_and_counts_as_failed() {
        let mut out = Vec::new();
        let missing = PathBuf::from("/nonexistent/scenario.json");
        let tally = policy_test(&[missing], false, &mut out).unwrap();
        let report = String::from_utf8(out).unwrap();
        assert_eq!(tally.failed, 1);
        assert!(
            report.starts_with("ERROR /nonexistent/scenario.json:"),
            "{report}"
        );
        assert!(report.ends_with("0 passed, 1 failed\n"), "{report}");
    }
}
