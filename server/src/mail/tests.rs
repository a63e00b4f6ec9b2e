//! Against a real SMTP server: Postfix's `smtp-sink` (Debian's `postfix`; `scripts/test` installs
//! it), started on a loopback port of its own for each case, with its fault injection: hard (5xx)
//! and soft (4xx) refusals of a chosen command, and a disconnect without a reply. TLS (STARTTLS
//! and from the first byte) and AUTH against aiosmtpd (`tls_relay.py`), which requires both.

use std::time::Duration;

use super::sink::{free_port, SmtpSink};
use super::*;

fn relay(port: u16) -> Relay {
    Relay {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        credentials: None,
        authorities: None,
        hello_name: "assent.example.org".into(),
        timeout: Duration::from_secs(5),
        connections: 2,
    }
}

/// A marketing email to Jane Doe, with its unsubscribe addresses.
fn email_to_jane() -> Email<'static> {
    Email {
        message_id: "0193-campaign-contact@assent.example.org",
        from: "Harbour Heating <news@harbour-heating.example>".parse().unwrap(),
        reply_to: Some("Harbour Heating <hello@harbour-heating.example>".parse().unwrap()),
        to: "Jane Doe <jane.doe@example.org>".parse().unwrap(),
        return_path: None,
        subject: "Your boiler service is due — book before winter",
        text: "Dear Jane,\nYour boiler service is due.\nUnsubscribe: https://assent.example.org/u/t0k3n",
        html: "<p>Dear Jane,</p><p>Your boiler service is due.</p><p><a href=\"https://assent.example.org/u/t0k3n\">Unsubscribe</a></p>",
        unsubscribe: Some(Unsubscribe {
            https: "https://assent.example.org/u/t0k3n",
            mailto: Some(Mailto {
                address: "unsubscribe@harbour-heating.example",
                subject: "Unsubscribe t0k3n",
            }),
        }),
        dkim: None,
    }
}

fn marketing(message_id: &str) -> Composed {
    compose(&Email {
        message_id,
        ..email_to_jane()
    })
    .expect("a message that builds")
}

#[test]
fn a_marketing_email_carries_its_one_click_unsubscribe_and_encoded_headers() {
    let message = marketing("0193-campaign-contact@assent.example.org");
    // Headers as a reader sees them: a long one is folded (RFC 5322), so unfolded here.
    let text = String::from_utf8(message.bytes.clone())
        .unwrap()
        .replace("\r\n ", " ");
    assert!(
        text.contains("Message-ID: <0193-campaign-contact@assent.example.org>"),
        "{text}"
    );
    assert!(text.contains("List-Unsubscribe: <https://assent.example.org/u/t0k3n>, <mailto:unsubscribe@harbour-heating.example?subject=Unsubscribe%20t0k3n>"), "{text}");
    assert!(
        text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{text}"
    );
    // The dash is not ASCII: the subject is encoded (RFC 2047), never sent raw.
    assert!(
        text.contains("Subject: Your boiler service is due =?utf-8?b?4oCU?= book before winter"),
        "{text}"
    );
    assert!(text.contains("multipart/alternative"), "{text}");
    assert!(
        text.contains("text/plain") && text.contains("text/html"),
        "{text}"
    );
    assert!(text.is_ascii(), "the whole message is 7-bit");
}

#[test]
fn a_return_path_is_the_envelope_sender_and_the_from_address_stays() {
    let tagged = "bounces+0193aabbccddeeff00112233445566aa@harbour-heating.example";
    let composed = compose(&Email {
        return_path: Some(tagged),
        ..email_to_jane()
    })
    .unwrap();
    assert_eq!(
        composed.envelope.from().map(ToString::to_string).as_deref(),
        Some(tagged)
    );
    assert_eq!(composed.envelope.to().len(), 1);
    let text = String::from_utf8(composed.bytes).unwrap();
    assert!(
        text.contains("From: \"Harbour Heating\" <news@harbour-heating.example>"),
        "{text}"
    );
    let untagged = marketing("u@assent.example.org");
    assert_eq!(
        untagged.envelope.from().map(ToString::to_string).as_deref(),
        Some("news@harbour-heating.example")
    );
}

#[test]
fn unsubscribe_addresses_that_would_break_the_header_are_refused() {
    let with = |https: &str, mailto: &str| {
        compose(&Email {
            unsubscribe: Some(Unsubscribe {
                https,
                mailto: Some(Mailto {
                    address: mailto,
                    subject: "Unsubscribe t",
                }),
            }),
            ..email_to_jane()
        })
        .err()
        .map(|e| e.to_string())
    };
    assert_eq!(
        with(
            "https://assent.example.org/u/t",
            "u+t@harbour-heating.example"
        ),
        None
    );
    let bad_url = Some("the unsubscribe URL is not valid in a List-Unsubscribe header".to_owned());
    assert_eq!(
        with("http://assent.example.org/u/t", "u@h.example"),
        bad_url
    );
    assert_eq!(
        with(
            "https://assent.example.org/u/t>, <https://evil.example",
            "u@h.example"
        ),
        bad_url
    );
    assert_eq!(with("https://assent.example.org/ü", "u@h.example"), bad_url);
    assert_eq!(with("https://", "u@h.example"), bad_url);
    let bad_mailbox =
        Some("the unsubscribe mailbox is not valid in a List-Unsubscribe header".to_owned());
    assert_eq!(
        with("https://assent.example.org/u/t", "not an address"),
        bad_mailbox
    );
}

#[test]
fn without_an_unsubscribe_mailbox_the_header_names_the_url_alone() {
    let composed = compose(&Email {
        unsubscribe: Some(Unsubscribe {
            https: "https://assent.example.org/u/t0k3n",
            mailto: None,
        }),
        ..email_to_jane()
    })
    .unwrap();
    let text = String::from_utf8(composed.bytes).unwrap();
    assert!(
        text.contains("List-Unsubscribe: <https://assent.example.org/u/t0k3n>\r\n"),
        "{text}"
    );
    assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
}

#[tokio::test]
async fn a_password_is_never_sent_in_plain_to_another_machine() {
    let mut plain = relay(25);
    plain.host = "smtp.harbour-heating.example".into();
    plain.credentials = Some(("assent".into(), Secret::new("hunter2-but-longer".into())));
    assert!(matches!(
        SmtpSender::new(plain.clone()),
        Err(MailError::PlainCredentials)
    ));
    plain.host = "127.0.0.1".into();
    assert!(
        SmtpSender::new(plain).is_ok(),
        "a relay on this machine may take it"
    );
}

#[tokio::test]
async fn the_relay_takes_messages_on_reused_connections() {
    let sink = SmtpSink::start(&[]);
    let sender = SmtpSender::new(relay(sink.port)).unwrap();
    for n in 0..5 {
        let id = format!("m{n}@assent.example.org");
        assert_eq!(sender.send(&marketing(&id)).await, Delivery::Accepted);
    }
    sender.close().await;
    // smtp-sink writes each dump when its transaction ends; give it a moment.
    let mut kept = Vec::new();
    for _ in 0..50 {
        kept = sink.received();
        if kept.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kept.len(), 5, "every message reached the sink");
    assert!(kept
        .iter()
        .all(|m| m.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click")));
    for n in 0..5 {
        let id = format!("Message-ID: <m{n}@assent.example.org>");
        assert_eq!(
            kept.iter().filter(|m| m.contains(&id)).count(),
            1,
            "{id} once"
        );
    }
}

/// What a delivery was and at which stage, with its code's class (4 or 5) where it has one.
fn shape(delivery: &Delivery) -> (&'static str, Option<Stage>, Option<u16>) {
    match delivery {
        Delivery::Accepted => ("accepted", None, None),
        Delivery::HardBounce { stage, code, .. } => ("hard bounce", Some(*stage), Some(code / 100)),
        Delivery::Refused { stage, code, .. } => ("refused", Some(*stage), Some(code / 100)),
        Delivery::Deferred { stage, code } => ("deferred", Some(*stage), Some(code / 100)),
        Delivery::RelayFailed { stage, .. } => ("relay failed", Some(*stage), None),
        Delivery::Unknown => ("unknown", None, None),
    }
}

/// How one message fares with a sink started with `faults`.
async fn one_message_with(faults: &[&str]) -> Delivery {
    let sink = SmtpSink::start(faults);
    let sender = SmtpSender::new(relay(sink.port)).unwrap();
    sender.send(&marketing("one@assent.example.org")).await
}

#[tokio::test]
async fn a_refused_mailbox_is_a_hard_bounce_and_other_refusals_flag_no_address() {
    let no_such_user = [
        "-f",
        "rcpt",
        "-B",
        "550 5.1.1 <jane.doe@example.org>: Recipient address rejected",
    ];
    let sink = SmtpSink::start(&no_such_user);
    let sender = SmtpSender::new(relay(sink.port)).unwrap();
    let delivery = sender.send(&marketing("a@assent.example.org")).await;
    assert_eq!(
        delivery,
        Delivery::HardBounce {
            stage: Stage::Rcpt,
            code: 550,
            enhanced: Some("5.1.1".into())
        }
    );
    // The connection was reset and reused: a second refusal is told the same way.
    let again = sender.send(&marketing("b@assent.example.org")).await;
    assert_eq!(shape(&again), ("hard bounce", Some(Stage::Rcpt), Some(5)));

    // A relay without enhanced codes: 550 at RCPT is the mailbox.
    let bare = one_message_with(&["-E", "-f", "rcpt", "-B", "550 No such user here"]).await;
    assert_eq!(shape(&bare), ("hard bounce", Some(Stage::Rcpt), Some(5)));
    // Refusals of the message, not of the address: spam or policy after its end, smtp-sink's
    // own "5.3.0" at RCPT.
    let spam = one_message_with(&["-f", ".", "-B", "554 5.7.1 Message rejected as spam"]).await;
    assert_eq!(
        spam,
        Delivery::Refused {
            stage: Stage::Message,
            code: 554,
            enhanced: Some("5.7.1".into())
        }
    );
    let system = one_message_with(&["-f", "rcpt"]).await;
    assert_eq!(shape(&system), ("refused", Some(Stage::Rcpt), Some(5)));
    // A full mailbox at RCPT is temporary, whatever its first digit (RFC 5321 4.5.3.1.10).
    let full = one_message_with(&["-f", "rcpt", "-B", "552 5.2.2 Mailbox full"]).await;
    assert_eq!(shape(&full), ("deferred", Some(Stage::Rcpt), Some(5)));
}

#[tokio::test]
async fn a_4xx_is_deferred_and_a_refused_sender_or_data_is_the_relays_failure() {
    let deferred = one_message_with(&["-r", "rcpt"]).await;
    assert_eq!(shape(&deferred), ("deferred", Some(Stage::Rcpt), Some(4)));
    let deferred = one_message_with(&["-r", "."]).await;
    assert_eq!(
        shape(&deferred),
        ("deferred", Some(Stage::Message), Some(4))
    );
    // A refusal of our sender, or of DATA, is no recipient's fault.
    let sender_refused = one_message_with(&["-f", "mail"]).await;
    assert_eq!(
        shape(&sender_refused),
        ("relay failed", Some(Stage::Mail), None)
    );
    let data_refused = one_message_with(&["-f", "data"]).await;
    assert_eq!(
        shape(&data_refused),
        ("relay failed", Some(Stage::Data), None)
    );
}

#[tokio::test]
async fn no_relay_or_a_lost_reply_is_told_apart_from_a_bounce() {
    let sender = SmtpSender::new(relay(free_port())).unwrap();
    let delivery = sender.send(&marketing("a@assent.example.org")).await;
    match delivery {
        Delivery::RelayFailed {
            stage: Stage::Connect,
            problem,
        } => {
            assert!(problem.contains("connection"), "{problem}");
        }
        other => panic!("{other:?}"),
    }

    // The sink hangs up after the message's end without a reply: it may have kept the
    // message, so the sender cannot know.
    assert_eq!(one_message_with(&["-q", "."]).await, Delivery::Unknown);
    // Hanging up at RCPT is before the message: not taken, the relay's failure.
    let hung_up = one_message_with(&["-q", "rcpt"]).await;
    assert_eq!(shape(&hung_up), ("relay failed", Some(Stage::Rcpt), None));
}

#[tokio::test]
async fn the_relays_reply_text_never_reaches_the_outcome() {
    let faults = [
        "-f",
        "mail",
        "-B",
        "550 5.7.1 jane.doe@example.org is not welcome",
    ];
    match one_message_with(&faults).await {
        Delivery::RelayFailed { problem, .. } => {
            assert_eq!(problem, "the relay refused with 550");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_maildir_keeps_each_message_whole_in_new() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::open(&dir.path().join("mail")).unwrap();
    let message = marketing("a@assent.example.org");
    let path = maildir.deliver(&message).await.unwrap();
    assert!(path.starts_with(dir.path().join("mail/new")));
    let kept = std::fs::read(&path).unwrap();
    assert_eq!(kept, message.bytes);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the server's user reads the messages");
    assert!(String::from_utf8(kept)
        .unwrap()
        .contains("Message-ID: <a@assent.example.org>"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("mail/tmp"))
            .unwrap()
            .count(),
        0,
        "nothing left half-written"
    );
}

#[tokio::test]
async fn a_relay_that_stops_answering_is_given_up_on_each_step() {
    // smtp-sink waits 5 s before answering; the relay's timeout is 1 s (the step, then at most
    // as long again for a polite QUIT).
    let slow = |faults: &'static [&'static str]| async move {
        let sink = SmtpSink::start(faults);
        let sender = SmtpSender::new(Relay {
            timeout: Duration::from_secs(1),
            ..relay(sink.port)
        })
        .unwrap();
        let started = std::time::Instant::now();
        let delivery = sender.send(&marketing("slow@assent.example.org")).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "given up in time"
        );
        delivery
    };
    // Silent after the message: it may have been taken.
    assert_eq!(slow(&["-W", ".:5"]).await, Delivery::Unknown);
    // Silent at RCPT: before the message, the relay's failure.
    let at_rcpt = slow(&["-W", "rcpt:5"]).await;
    assert_eq!(shape(&at_rcpt), ("relay failed", Some(Stage::Rcpt), None));
}

/// The python of the virtual environment with dkimpy (`scripts/test` makes it).
fn dkimpy() -> std::path::PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/dkim/bin/python");
    assert!(
        python.exists(),
        "dkimpy is missing: scripts/test installs it into .tools/dkim"
    );
    python
}

/// Whether dkimpy verifies `message` against `key`'s DNS record; the headers it says are signed.
fn verified(message: &[u8], key: &DkimKey) -> Result<String, String> {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mail/verify_dkim.py");
    let mut child = std::process::Command::new(dkimpy())
        .arg(script)
        .args([&key.selector, &key.domain, &key.dns_record()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn an_ed25519_dkim_signature_covers_both_unsubscribe_headers_and_verifies() {
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let key = DkimKey::from_key(&signing, "mail2026", "harbour-heating.example");
    let composed = compose(&Email {
        dkim: Some(&key),
        ..email_to_jane()
    })
    .unwrap();
    let text = String::from_utf8(composed.bytes.clone()).unwrap();
    assert!(text.contains("\r\nDKIM-Signature: "), "{text}");
    assert!(text.contains("a=ed25519-sha256"), "{text}");
    let signed = verified(&composed.bytes, &key).expect("dkimpy verifies the signature");
    for header in [
        "from",
        "to",
        "subject",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.split(':').any(|h| h == header),
            "{header} is signed: {signed}"
        );
    }

    // A changed unsubscribe address breaks the signature: the receiver would not honour it.
    let tampered = text.replacen(
        "https://assent.example.org/u/t0k3n",
        "https://attacker.example/u/t0k3n",
        1,
    );
    assert_ne!(tampered, text);
    assert!(verified(tampered.as_bytes(), &key).is_err());
    // Another key's record does not verify it either.
    let other = DkimKey::from_key(
        &ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        "mail2026",
        "harbour-heating.example",
    );
    assert!(verified(&composed.bytes, &other).is_err());
}

/// aiosmtpd's relay (`tls_relay.py`, in the virtual environment `scripts/test` makes) on a
/// loopback port with TLS (`starttls` or `tls`) and AUTH required, its certificate made for
/// `localhost` here; stopped when dropped.
struct TlsRelay {
    child: std::process::Child,
    port: u16,
    /// The relay's certificate, PEM: the one authority the client trusts.
    certificate: Vec<u8>,
    dump: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RELAY_USER: &str = "assent";
const RELAY_PASSWORD: &str = "harbour-relay-secret";

impl TlsRelay {
    fn start(mode: &str) -> TlsRelay {
        use std::io::BufRead;
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/smtp/bin/python");
        assert!(
            python.exists(),
            "aiosmtpd is missing: scripts/test installs it into .tools/smtp"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        crate::tls::load_or_generate(dir.path(), ([127, 0, 0, 1], port).into()).unwrap();
        let dump = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mail/tls_relay.py"))
            .args(["--mode", mode, "--port", &port.to_string()])
            .arg("--cert")
            .arg(dir.path().join("tls/cert.pem"))
            .arg("--key")
            .arg(dir.path().join("tls/key.pem"))
            .args(["--user", RELAY_USER, "--password", RELAY_PASSWORD])
            .arg("--dump")
            .arg(dump.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            // aiosmtpd logs each refused handshake with its traceback: the cases expect them.
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python starts");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the TLS relay starts");
        let certificate = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
        TlsRelay {
            child,
            port,
            certificate,
            dump,
            _dir: dir,
        }
    }

    /// The settings that reach it by name, trusting its certificate, logging in with `password`.
    fn relay(&self, security: Security, password: &str) -> Relay {
        Relay {
            host: "localhost".into(),
            security,
            credentials: Some((RELAY_USER.into(), Secret::new(password.into()))),
            authorities: Some(self.certificate.clone()),
            ..relay(self.port)
        }
    }

    fn received(&self) -> Vec<String> {
        std::fs::read_dir(self.dump.path())
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn mail_goes_over_starttls_and_tls_with_a_login_and_a_wrong_password_fails_the_relay() {
    for (mode, security) in [("starttls", Security::StartTls), ("tls", Security::Tls)] {
        let server = TlsRelay::start(mode);
        let sender = SmtpSender::new(server.relay(security, RELAY_PASSWORD)).unwrap();
        let id = format!("{mode}@assent.example.org");
        assert_eq!(
            sender.send(&marketing(&id)).await,
            Delivery::Accepted,
            "{mode}"
        );
        sender.close().await;
        let kept = server.received();
        assert_eq!(kept.len(), 1, "{mode}");
        assert!(kept[0].contains(&format!("Message-ID: <{id}>")), "{mode}");

        let wrong = SmtpSender::new(server.relay(security, "not-the-password")).unwrap();
        let refused = wrong.send(&marketing("wrong@assent.example.org")).await;
        assert_eq!(
            shape(&refused),
            ("relay failed", Some(Stage::Auth), None),
            "{mode}: {refused:?}"
        );
        assert_eq!(
            server.received().len(),
            1,
            "{mode}: nothing taken without the login"
        );
    }
}

#[tokio::test]
async fn a_relay_whose_certificate_is_not_trusted_or_that_offers_no_starttls_is_not_used() {
    let server = TlsRelay::start("starttls");
    let stranger = TlsRelay::start("tls");
    let mut untrusted = server.relay(Security::StartTls, RELAY_PASSWORD);
    untrusted.authorities = Some(stranger.certificate.clone());
    let sender = SmtpSender::new(untrusted).unwrap();
    let refused = sender
        .send(&marketing("untrusted@assent.example.org"))
        .await;
    assert_eq!(
        shape(&refused),
        ("relay failed", Some(Stage::Connect), None),
        "{refused:?}"
    );
    assert!(
        server.received().is_empty(),
        "no message to a relay not proved to be ours"
    );
    // smtp-sink offers no STARTTLS: a relay configured for it is not used in plain.
    let sink = SmtpSink::start(&[]);
    let plain_only = Relay {
        security: Security::StartTls,
        authorities: Some(server.certificate.clone()),
        ..relay(sink.port)
    };
    let refused = SmtpSender::new(plain_only)
        .unwrap()
        .send(&marketing("plain@assent.example.org"))
        .await;
    assert_eq!(
        shape(&refused),
        ("relay failed", Some(Stage::Connect), None),
        "{refused:?}"
    );
    assert!(sink.received().is_empty());
}
