//! Compliance scenarios (SCENARIOS.md): reading them from JSON and JSON Lines files, running them
//! through the engine and reporting `PASS`, `FAIL` and `ERROR` lines — `assent-server policy-test`.

use std::io::Write;
use std::path::{Path, PathBuf};

use assent_shared::ledger::{Basis, Channel, LedgerEvent, Message, Policy, Reason, Subject};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{decide, sort_ledger, CompiledPolicy, Decision};

/// One question a compliance officer asks, and the answer the rules give.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub now: DateTime<Utc>,
    #[serde(default)]
    pub policy: Option<Policy>,
    pub subject: Subject,
    #[serde(default)]
    pub events: Vec<LedgerEvent>,
    pub message: Message,
    pub expect: Expectation,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Expectation {
    pub allowed: bool,
    #[serde(default)]
    pub basis: Option<Basis>,
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub evidence: Vec<String>,
}

impl Scenario {
    /// Parses one scenario and checks what serde cannot: a message is never sent on `any`, and
    /// an expectation names a basis or a reason as its `allowed` says.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if scenario.message.channel == Channel::Any {
            return Err(
                "message.channel may not be \"any\": a message goes out on one channel".into(),
            );
        }
        match (
            &scenario.expect.allowed,
            &scenario.expect.basis,
            &scenario.expect.reason,
        ) {
            (true, None, _) => {
                return Err("expect.allowed is true but expect.basis is missing".into())
            }
            (false, _, None) => {
                return Err("expect.allowed is false but expect.reason is missing".into())
            }
            _ => {}
        }
        Ok(scenario)
    }

    /// Runs the scenario: the engine's decision, and what is wrong with it, if anything.
    pub fn run(mut self, default_policy: &CompiledPolicy) -> (String, Option<String>) {
        sort_ledger(&mut self.events);
        let compiled;
        let policy = match self.policy.take() {
            Some(policy) => {
                compiled = CompiledPolicy::new(policy);
                &compiled
            }
            None => default_policy,
        };
        let decision = decide(policy, &self.subject, &self.events, &self.message, self.now);
        let problem = self.mismatch(&decision);
        (self.id, problem)
    }

    fn cited(&self, decision: &Decision) -> Vec<String> {
        decision
            .evidence
            .as_slice()
            .iter()
            .filter_map(|&i| self.events[i as usize].id.clone())
            .collect()
    }

    fn mismatch(&self, decision: &Decision) -> Option<String> {
        let expect = &self.expect;
        let got = describe(decision, &self.cited(decision));
        let wanted = match (expect.allowed, expect.basis, expect.reason) {
            (true, Some(basis), _) => format!("allowed ({basis})"),
            (false, _, Some(reason)) => format!("not allowed ({reason})"),
            _ => "an answer".to_owned(),
        };
        let right_answer = match (expect.allowed, decision.allowed) {
            (true, true) => expect.basis == decision.basis,
            (false, false) => expect.reason.is_some_and(|r| decision.reasons.contains(r)),
            _ => false,
        };
        if !right_answer {
            return Some(format!("expected {wanted}, got {got}"));
        }
        let cited = self.cited(decision);
        let missing: Vec<&str> = expect
            .evidence
            .iter()
            .filter(|id| !cited.contains(id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "expected {wanted} citing [{}], got {got}",
                expect.evidence.join(", ")
            ));
        }
        None
    }
}

fn describe(decision: &Decision, cited: &[String]) -> String {
    let answer = if decision.allowed {
        format!(
            "allowed ({})",
            decision.basis.map(|b| b.as_str()).unwrap_or("?")
        )
    } else {
        let reasons: Vec<&str> = decision.reasons.iter().map(Reason::as_str).collect();
        format!("not allowed ({})", reasons.join(", "))
    };
    format!("{answer} citing [{}]", cited.join(", "))
}

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
    fn a_mismatch_says_what_was_expected_and_what_came() {
        let line = r#"{"id":"x","now":"2025-09-01T09:00:00Z","subject":{"kind":"individual"},"events":[],
            "message":{"kind":"marketing","channel":"post","topic":"sofas"},"expect":{"allowed":false,"reason":"no_consent"}}"#;
        let (id, problem) = Scenario::parse(&line.replace('\n', ""))
            .unwrap()
            .run(&CompiledPolicy::default());
        assert_eq!(id, "x");
        assert_eq!(
            problem.unwrap(),
            "expected not allowed (no_consent), got allowed (legitimate_interest) citing []"
        );
    }

    #[test]
    fn a_message_on_any_channel_is_refused() {
        let line = r#"{"id":"x","now":"2025-09-01T09:00:00Z","subject":{"kind":"individual"},"events":[],"message":{"kind":"marketing","channel":"any","topic":"sofas"},"expect":{"allowed":false,"reason":"no_consent"}}"#;
        assert!(Scenario::parse(line).unwrap_err().contains("any"));
    }
}
