//! [`ports::TravelRuleStore`], and the travel-rule parts of the session store: declarations
//! and proofs recorded with their events and compliance records, the record carried over to
//! a new session of the same key, a raised flag reopening a complete record, and the
//! compliance records outliving the sessions' retention.
#![allow(unused_imports)]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, Challenge, Custody, Declaration, DeclarationSource, DeclareRefused, EventType,
    FrameAncestors, HostedStep, Owner, PersonName, ProofMethod, ProofPolicy, RecordedDeclaration,
    SessionId, TravelRuleClosed, TravelRuleRecord, TravelRuleStatus, Vasp, VerifiedProof,
};
use ports::*;
use uuid::Uuid;

use crate::fixtures::*;

use super::support::*;

const WINDOW: Duration = TRAVEL_RULE_WINDOW;

fn own(at_s: i64) -> RecordedDeclaration {
    RecordedDeclaration {
        declaration: Declaration::new(Custody::SelfHosted, Owner::Customer, None, None).unwrap(),
        declared_at: at(at_s),
        source: DeclarationSource::Api,
    }
}

fn exchange(at_s: i64) -> RecordedDeclaration {
    let vasp = Vasp {
        name: PersonName::parse("Example Exchange").unwrap(),
        lei: None,
        country: None,
    };
    RecordedDeclaration {
        declaration: Declaration::new(Custody::Vasp, Owner::Customer, Some(vasp), None).unwrap(),
        declared_at: at(at_s),
        source: DeclarationSource::Hosted,
    }
}

fn proof(at_s: i64) -> ProofRecord {
    ProofRecord {
        method: ProofMethod::Eip191,
        address: "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359".into(),
        message: "Acme Travel Rule check: I control 0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
            .into(),
        signature: format!("0x{}", "ab".repeat(65)),
        verified_at: at(at_s),
    }
}

fn events() -> TravelRuleEvents {
    TravelRuleEvents {
        recorded: evt(),
        completed: evt(),
    }
}

/// Mints session `id` for `user` at `created`, under `policy`, with a challenge.
async fn mint_under(
    stores: &Stores,
    id: SessionId,
    user: u128,
    force: bool,
    policy: ProofPolicy,
    created: DateTime<Utc>,
) -> StoredSession {
    mint_hosted(stores, id, user, force, policy, created, HostedStep::off()).await
}

/// [`mint_under`] with the application's hosted travel-rule step `hosted`.
async fn mint_hosted(
    stores: &Stores,
    id: SessionId,
    user: u128,
    force: bool,
    policy: ProofPolicy,
    created: DateTime<Utc>,
    hosted: HostedStep,
) -> StoredSession {
    let r = request(user, force);
    let mut q = reuse_query(APP_A, &r, created, 200);
    q.claim = ClaimToken(Uuid::new_v4());
    assert_eq!(
        stores.sessions.reuse_or_claim(&q).await.unwrap(),
        ReuseOutcome::Claimed
    );
    let mut new = new_session(APP_A, id, &r, created);
    let challenge = Challenge::from_stored(format!("Acme Travel Rule check: session {id}"));
    new.session = new
        .session
        .with_travel_rule(TravelRuleRecord::new(policy), Some(challenge))
        .with_hosted_step(hosted);
    stores.sessions.fulfil(APP_A, q.claim, new).await.unwrap()
}

fn kinds(records: &[EventRecord]) -> Vec<EventType> {
    records.iter().map(|r| r.event.kind).collect()
}

/// A declaration is recorded with `session.declaration_recorded` (and
/// `session.travel_rule_completed` when the record becomes complete), every version kept;
/// the same declaration again changes nothing; a complete record's declaration is final;
/// another application's session is not found.
pub async fn declarations_are_recorded_with_their_events(stores: Stores) {
    ensure_applications(&stores).await;
    let s = mint_under(&stores, sid(1), 1, true, ProofPolicy::WhenForced, t0()).await;
    assert_eq!(
        s.session.travel_rule_status(),
        TravelRuleStatus::AwaitingDeclaration
    );
    assert!(s.session.challenge().is_some(), "the challenge is stored");
    let tr = &stores.travel_rule;
    let DeclareOutcome::Recorded(after) = tr
        .declare(APP_A, sid(1), own(1), WINDOW, events())
        .await
        .unwrap()
    else {
        panic!("recorded")
    };
    assert_eq!(
        after.session.travel_rule_status(),
        TravelRuleStatus::AwaitingProof
    );
    assert_eq!(after.session.travel_rule().declaration, Some(own(1)));
    // Read back as stored.
    let stored = stores.sessions.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(stored.session.travel_rule(), after.session.travel_rule());
    assert_eq!(stored.session.challenge(), s.session.challenge());
    // The same declaration: nothing recorded.
    assert!(matches!(
        tr.declare(APP_A, sid(1), own(2), WINDOW, events())
            .await
            .unwrap(),
        DeclareOutcome::Unchanged(_)
    ));
    // Replaced: complete at once.
    let DeclareOutcome::Recorded(done) = tr
        .declare(APP_A, sid(1), exchange(3), WINDOW, events())
        .await
        .unwrap()
    else {
        panic!("replaced")
    };
    assert_eq!(
        done.session.travel_rule_status(),
        TravelRuleStatus::Complete
    );
    assert!(matches!(
        tr.declare(APP_A, sid(1), exchange(4), WINDOW, events())
            .await
            .unwrap(),
        DeclareOutcome::Unchanged(_)
    ));
    let refused = tr
        .declare(APP_A, sid(1), own(5), WINDOW, events())
        .await
        .unwrap();
    assert!(
        matches!(refused, DeclareOutcome::Refused(DeclareRefused::Final, _)),
        "{refused:?}"
    );
    assert_eq!(
        tr.declare(APP_B, sid(1), own(6), WINDOW, events())
            .await
            .unwrap(),
        DeclareOutcome::NotFound
    );
    let record = tr.compliance_record(APP_A, sid(1)).await.unwrap().unwrap();
    let versions: Vec<(u32, RecordedDeclaration)> = record
        .declarations
        .iter()
        .map(|v| (v.version, v.declaration.clone()))
        .collect();
    assert_eq!(versions, [(1, own(1)), (2, exchange(3))]);
    assert_eq!(
        kinds(&stores.events.session_events(APP_A, sid(1)).await.unwrap()),
        [
            EventType::SessionCreated,
            EventType::SessionDeclarationRecorded,
            EventType::SessionDeclarationRecorded,
            EventType::SessionTravelRuleCompleted,
        ]
    );
    // The events carry the session as it was right after the change.
    let trail = stores.events.session_events(APP_A, sid(1)).await.unwrap();
    assert_eq!(
        trail[3].event.session.session.travel_rule().declaration,
        Some(exchange(3))
    );
}

/// A proof is recorded with its compliance record (message and signature), and
/// `session.ownership_verified` (then `session.travel_rule_completed` when it completes the
/// record); a second proof changes nothing; a proof before the declaration is kept and the
/// later declaration completes the record at once; refused proofs are kept (time and code).
pub async fn proofs_are_recorded_with_their_events(stores: Stores) {
    ensure_applications(&stores).await;
    mint_under(&stores, sid(1), 1, true, ProofPolicy::WhenForced, t0()).await;
    let tr = &stores.travel_rule;
    tr.declare(APP_A, sid(1), own(1), WINDOW, events())
        .await
        .unwrap();
    let ProveOutcome::Verified(done) = tr
        .record_proof(APP_A, sid(1), proof(2), WINDOW, events())
        .await
        .unwrap()
    else {
        panic!("verified")
    };
    assert_eq!(
        done.session.travel_rule_status(),
        TravelRuleStatus::Complete
    );
    assert_eq!(
        done.session.travel_rule().proof,
        Some(VerifiedProof {
            method: ProofMethod::Eip191,
            verified_at: at(2)
        })
    );
    assert!(matches!(
        tr.record_proof(APP_A, sid(1), proof(3), WINDOW, events())
            .await
            .unwrap(),
        ProveOutcome::AlreadyVerified(_)
    ));
    let rejected = RejectedProof {
        id: Uuid::now_v7(),
        at: at(4),
        rejection: ProofRejection::Mismatch,
    };
    tr.reject_proof(APP_A, sid(1), rejected).await.unwrap();
    let record = tr.compliance_record(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(record.proof, Some((proof(2), None)));
    assert_eq!(record.rejected, [rejected]);
    assert_eq!(
        kinds(&stores.events.session_events(APP_A, sid(1)).await.unwrap()),
        [
            EventType::SessionCreated,
            EventType::SessionDeclarationRecorded,
            EventType::SessionOwnershipVerified,
            EventType::SessionTravelRuleCompleted,
        ]
    );

    // A proof first: kept; the declaration then completes the record.
    mint_under(&stores, sid(2), 2, false, ProofPolicy::Always, t0()).await;
    let ProveOutcome::Verified(first) = tr
        .record_proof(APP_A, sid(2), proof(1), WINDOW, events())
        .await
        .unwrap()
    else {
        panic!("verified")
    };
    assert_eq!(
        first.session.travel_rule_status(),
        TravelRuleStatus::AwaitingDeclaration
    );
    let DeclareOutcome::Recorded(now) = tr
        .declare(APP_A, sid(2), own(2), WINDOW, events())
        .await
        .unwrap()
    else {
        panic!("recorded")
    };
    assert_eq!(now.session.travel_rule_status(), TravelRuleStatus::Complete);
    assert_eq!(
        kinds(&stores.events.session_events(APP_A, sid(2)).await.unwrap()),
        [
            EventType::SessionCreated,
            EventType::SessionOwnershipVerified,
            EventType::SessionDeclarationRecorded,
            EventType::SessionTravelRuleCompleted,
        ]
    );
    assert_eq!(
        tr.compliance_record(APP_B, sid(2)).await.unwrap(),
        None,
        "another application's record is not found"
    );
}

/// Declarations and proofs are served for ACTIVE, CONSUMED and EXPIRED sessions until the
/// window ends, never for a cancelled one; nothing is recorded when refused.
pub async fn the_window_and_cancel_close_the_record(stores: Stores) {
    ensure_applications(&stores).await;
    let tr = &stores.travel_rule;
    // Consumed, then expired: still open within the window.
    mint_under(&stores, sid(1), 1, false, ProofPolicy::WhenForced, t0()).await;
    stores
        .sessions
        .launch(APP_A, sid(1), at(5), true, evt())
        .await
        .unwrap();
    let late = RecordedDeclaration {
        declared_at: at(86_399),
        ..own(0)
    };
    assert!(matches!(
        tr.declare(APP_A, sid(1), late, WINDOW, events())
            .await
            .unwrap(),
        DeclareOutcome::Recorded(_)
    ));
    let closed = RecordedDeclaration {
        declared_at: at(86_400),
        ..exchange(0)
    };
    let refused = tr
        .declare(APP_A, sid(1), closed, WINDOW, events())
        .await
        .unwrap();
    assert!(
        matches!(
            refused,
            DeclareOutcome::Refused(DeclareRefused::Closed(TravelRuleClosed::WindowClosed), _)
        ),
        "{refused:?}"
    );
    let late_proof = ProofRecord {
        verified_at: at(90_000),
        ..proof(0)
    };
    assert!(matches!(
        tr.record_proof(APP_A, sid(1), late_proof, WINDOW, events())
            .await
            .unwrap(),
        ProveOutcome::Closed(TravelRuleClosed::WindowClosed, _)
    ));
    // Cancelled: closed at once.
    mint_under(&stores, sid(2), 2, false, ProofPolicy::WhenForced, t0()).await;
    stores
        .sessions
        .cancel(APP_A, sid(2), at(1), evt())
        .await
        .unwrap();
    assert!(matches!(
        tr.declare(APP_A, sid(2), own(2), WINDOW, events())
            .await
            .unwrap(),
        DeclareOutcome::Refused(
            DeclareRefused::Closed(TravelRuleClosed::SessionCancelled),
            _
        )
    ));
    assert!(matches!(
        tr.record_proof(APP_A, sid(2), proof(2), WINDOW, events())
            .await
            .unwrap(),
        ProveOutcome::Closed(TravelRuleClosed::SessionCancelled, _)
    ));
    let record = tr.compliance_record(APP_A, sid(2)).await.unwrap().unwrap();
    assert_eq!(record, ComplianceRecord::default());
}

/// The record follows the counterparty, as the domain says
/// (`TravelRuleRecord::carried_over`): for random previous records (declared and proven at
/// random times, by the new session's signer or another, cancelled or not) and random
/// instants of the new mint, the new session of
/// the same key starts with exactly the domain's carried record, under its own policy, with
/// the compliance records of what it carried, and `session.travel_rule_completed` follows
/// `session.created` exactly when that record is complete.
pub async fn the_record_is_carried_over_as_the_domain_says(stores: Stores) {
    use proptest::prelude::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    ensure_applications(&stores).await;
    let tr = &stores.travel_rule;
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    let window = 86_400i64;
    let strategy = (
        proptest::option::of(0..200i64),
        proptest::option::of(0..200i64),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(ProofPolicy::Always), Just(ProofPolicy::WhenForced)],
        prop_oneof![
            (301..window - 100),
            (window - 3..window + 203),
            (window + 200..3 * window),
        ],
    );
    for n in 0..40u32 {
        let (declared, proven, cancelled, vasp, other_signer, new_policy, minted) =
            strategy.new_tree(&mut runner).unwrap().current();
        let user = 40_000 + u128::from(n);
        let first = sid(40_000 + 2 * u128::from(n));
        let second = sid(40_001 + 2 * u128::from(n));
        mint_under(&stores, first, user, true, ProofPolicy::WhenForced, t0()).await;
        if let Some(d) = declared {
            let declaration = if vasp { exchange(d) } else { own(d) };
            tr.declare(APP_A, first, declaration, WINDOW, events())
                .await
                .unwrap();
        }
        if let Some(p) = proven {
            let mut proof = proof(p);
            if other_signer {
                // As an invoice with the same payment hash and another payee would have it.
                proof.address = "0x52908400098527886E0F7030069857D2E4169EE7".into();
            }
            tr.record_proof(APP_A, first, proof, WINDOW, events())
                .await
                .unwrap();
        }
        if cancelled {
            stores
                .sessions
                .cancel(APP_A, first, at(250), evt())
                .await
                .unwrap();
        }
        let previous = stores.sessions.get(APP_A, first).await.unwrap().unwrap();
        let now = at(minted);
        let s = mint_under(&stores, second, user, false, new_policy, now).await;
        let expected = if cancelled {
            TravelRuleRecord::new(new_policy)
        } else {
            previous
                .session
                .travel_rule()
                .carried_over(new_policy, now, WINDOW, !other_signer)
        };
        let case = format!(
            "declared {declared:?} proven {proven:?} cancelled {cancelled} vasp {vasp} other signer {other_signer} policy {new_policy:?} minted at {minted}"
        );
        assert_eq!(s.session.travel_rule(), &expected, "{case}");
        let stored = stores.sessions.get(APP_A, second).await.unwrap().unwrap();
        assert_eq!(stored.session.travel_rule(), &expected, "{case}: as stored");
        let record = tr.compliance_record(APP_A, second).await.unwrap().unwrap();
        assert_eq!(
            record
                .declarations
                .last()
                .map(|v| (v.declaration.clone(), v.carried_from)),
            expected.declaration.clone().map(|d| (d, Some(first))),
            "{case}"
        );
        assert_eq!(
            record
                .proof
                .as_ref()
                .map(|(p, from)| (p.verified_at, *from)),
            expected.proof.map(|p| (p.verified_at, Some(first))),
            "{case}"
        );
        let trail = kinds(&stores.events.session_events(APP_A, second).await.unwrap());
        let complete =
            expected.declaration.is_some() && expected.status(false) == TravelRuleStatus::Complete;
        let mut want = vec![EventType::SessionCreated];
        if complete {
            want.push(EventType::SessionTravelRuleCompleted);
        }
        assert_eq!(trail, want, "{case}");
    }
}

/// A raised `forceVerifyOwnership` moves a record from `COMPLETE` back to `AWAITING_PROOF`
/// exactly when the domain says (`TravelRuleRecord::reopened_by`), and then the reuse that
/// raised it writes `session.travel_rule_reopened`: for random records (no declaration, the
/// customer's own wallet or an exchange, proven or not) under either policy.
pub async fn a_raised_flag_reopens_as_the_domain_says(stores: Stores) {
    ensure_applications(&stores).await;
    let tr = &stores.travel_rule;
    let mut n = 0u128;
    for policy in [ProofPolicy::Always, ProofPolicy::WhenForced] {
        for declaration in [None, Some(own(1)), Some(exchange(1))] {
            for proven in [false, true] {
                n += 1;
                let id = sid(50_000 + n);
                let user = 50_000 + n;
                mint_under(&stores, id, user, false, policy, t0()).await;
                if let Some(d) = declaration.clone() {
                    tr.declare(APP_A, id, d, WINDOW, events()).await.unwrap();
                }
                if proven {
                    tr.record_proof(APP_A, id, proof(2), WINDOW, events())
                        .await
                        .unwrap();
                }
                let before = stores.sessions.get(APP_A, id).await.unwrap().unwrap();
                let reopens = before.session.travel_rule().reopened_by(false, true);
                let mut q = reuse_query(APP_A, &request(user, true), at(3), 2);
                q.nonce = Some(nonce(APP_A));
                let ReuseOutcome::Reused(reused) =
                    stores.sessions.reuse_or_claim(&q).await.unwrap()
                else {
                    panic!("reused")
                };
                assert!(reused.session.force_verify_ownership());
                let case = format!("{policy:?} {declaration:?} proven {proven}");
                let trail = kinds(&stores.events.session_events(APP_A, id).await.unwrap());
                assert_eq!(
                    trail.contains(&EventType::SessionTravelRuleReopened),
                    reopens,
                    "{case}: {trail:?}"
                );
                if reopens {
                    assert_eq!(
                        reused.session.travel_rule_status(),
                        TravelRuleStatus::AwaitingProof,
                        "{case}"
                    );
                }
                // Raising it again does nothing more.
                let mut again = reuse_query(APP_A, &request(user, true), at(4), 3);
                again.nonce = Some(nonce(APP_A));
                stores.sessions.reuse_or_claim(&again).await.unwrap();
                let after = kinds(&stores.events.session_events(APP_A, id).await.unwrap());
                assert_eq!(after, trail, "{case}");
            }
        }
    }
}

/// A session with compliance records (a declaration, a proof or a refused proof) is kept,
/// with them, for the travel-rule retention, whatever the sessions' retention says; then
/// it goes with them.
pub async fn compliance_records_outlive_the_sessions_retention(stores: Stores) {
    ensure_applications(&stores).await;
    let tr = &stores.travel_rule;
    for (n, user) in [(1u128, 1u128), (2, 2), (3, 3)] {
        mint_under(&stores, sid(n), user, false, ProofPolicy::WhenForced, t0()).await;
    }
    tr.declare(APP_A, sid(1), own(1), WINDOW, events())
        .await
        .unwrap();
    tr.reject_proof(
        APP_A,
        sid(2),
        RejectedProof {
            id: Uuid::now_v7(),
            at: at(2),
            rejection: ProofRejection::Malformed,
        },
    )
    .await
    .unwrap();
    // Every session ended at +300; the sessions' retention has passed, not the records'.
    assert!(
        !stores
            .events
            .session_events(APP_A, sid(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        stores
            .housekeeping
            .purge(at(1000), at(100), 10)
            .await
            .unwrap(),
        3,
        "one session deleted, two thinned"
    );
    assert!(stores.sessions.get(APP_A, sid(3)).await.unwrap().is_none());
    for kept in [sid(1), sid(2)] {
        assert!(stores.sessions.get(APP_A, kept).await.unwrap().is_some());
        assert_ne!(
            tr.compliance_record(APP_A, kept).await.unwrap(),
            Some(ComplianceRecord::default())
        );
        assert_eq!(
            stores.events.session_events(APP_A, kept).await.unwrap(),
            vec![],
            "the events follow the sessions' retention"
        );
    }
    assert_eq!(
        stores
            .housekeeping
            .purge(at(1000), at(100), 10)
            .await
            .unwrap(),
        0,
        "a thinned session is not purged again"
    );
    assert_eq!(
        stores
            .housekeeping
            .purge(at(1000), at(1000), 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(tr.compliance_record(APP_A, sid(1)).await.unwrap(), None);
}

/// A launch of a session whose hosted travel-rule step is pending consumes nothing, however
/// asked, exactly when the domain says (`Session::hosted_step_pending`): for random records
/// (no declaration, the customer's own wallet or an exchange, proven or not, the flag set or
/// not) under either policy, with the step on or off. The step (and its frame ancestors) is
/// stored with the session as it was minted.
pub async fn a_pending_hosted_step_holds_the_launch_as_the_domain_says(stores: Stores) {
    use proptest::prelude::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    ensure_applications(&stores).await;
    let tr = &stores.travel_rule;
    let mut runner = TestRunner::new(Config {
        cases: 32,
        ..Config::default()
    });
    let strategy = (
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(ProofPolicy::Always), Just(ProofPolicy::WhenForced)],
        any::<bool>(),
    );
    let framed =
        FrameAncestors::parse("https://partner.example https://*.partner.example:8443").unwrap();
    for n in 0..32u32 {
        let (declared, proven, force, policy, enabled) =
            strategy.new_tree(&mut runner).unwrap().current();
        let id = sid(60_000 + u128::from(n));
        let hosted = HostedStep {
            enabled,
            frame_ancestors: if n % 2 == 0 {
                framed.clone()
            } else {
                FrameAncestors::any()
            },
        };
        let minted = mint_hosted(
            &stores,
            id,
            60_000 + u128::from(n),
            force,
            policy,
            t0(),
            hosted.clone(),
        )
        .await;
        assert_eq!(minted.session.hosted_step(), &hosted);
        if let Some(vasp) = declared {
            let declaration = if vasp { exchange(1) } else { own(1) };
            tr.declare(APP_A, id, declaration, WINDOW, events())
                .await
                .unwrap();
        }
        if proven {
            tr.record_proof(APP_A, id, proof(2), WINDOW, events())
                .await
                .unwrap();
        }
        let stored = stores.sessions.get(APP_A, id).await.unwrap().unwrap();
        assert_eq!(stored.session.hosted_step(), &hosted, "as stored");
        let pending = stored.session.hosted_step_pending();
        let case = format!(
            "declared {declared:?} proven {proven} force {force} policy {policy:?} hosted {enabled}"
        );
        for consume in [false, true] {
            let launched = stores
                .sessions
                .launch(APP_A, id, at(10), consume, evt())
                .await
                .unwrap();
            match launched {
                LaunchResult::Held(s) => {
                    assert!(pending, "{case}: held, the domain says not pending");
                    assert_eq!(s.session.status_at(at(10)), domain::SessionStatus::Active);
                }
                LaunchResult::Opened(_) => {
                    assert!(!pending, "{case}: opened, the domain says pending");
                }
                other => panic!("{case}: {other:?}"),
            }
        }
        let after = stores.sessions.get(APP_A, id).await.unwrap().unwrap();
        assert_eq!(
            after.session.status_at(at(10)) == domain::SessionStatus::Active,
            pending,
            "{case}: consumed exactly when not pending"
        );
    }
}
