//! Compliance scenarios (SCENARIOS.md): parsing one from its JSON text and running it through the
//! engine. Reading scenario files and reporting on them is the command line's (`assent-server
//! policy-test`); this crate reads no file.

use assent_shared::ledger::{Basis, Channel, LedgerEvent, Message, Policy, Reason, Subject};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{decide, sort_ledger, CompiledPolicy, Decision};

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

#[cfg(test)]
mod tests {
    use super::*;

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
