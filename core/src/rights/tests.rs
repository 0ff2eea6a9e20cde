//! Deadlines across month ends and leap years, the extension's bounds, and the status a request
//! shows at each step of its life.

use super::*;

fn d(s: &str) -> Date {
    parse_date(s).unwrap()
}

#[test]
fn an_answer_is_due_one_calendar_month_after_receipt_clamped_to_the_months_end() {
    for (received, due) in [
        ("2026-01-15", "2026-02-15"),
        ("2026-01-31", "2026-02-28"),
        ("2028-01-31", "2028-02-29"),
        ("2026-03-31", "2026-04-30"),
        ("2026-12-31", "2027-01-31"),
        ("2026-02-28", "2026-03-28"),
    ] {
        assert_eq!(deadline(d(received), None), Some(d(due)), "{received}");
    }
}

#[test]
fn an_extension_adds_calendar_months_to_the_receipt_not_to_the_first_deadline() {
    // 31 January + 3 months is 30 April, not 28 February + 2 months = 28 April.
    assert_eq!(deadline(d("2026-01-31"), Some(2)), Some(d("2026-04-30")));
    assert_eq!(deadline(d("2026-01-31"), Some(1)), Some(d("2026-03-31")));
    assert_eq!(
        extend(
            d("2026-01-31"),
            2,
            "complex",
            d("2026-02-10"),
            d("2026-02-10"),
            true
        ),
        Ok(d("2026-04-30"))
    );
}

#[test]
fn an_extension_is_one_or_two_months_with_a_reason_told_within_the_first_month() {
    let received = d("2026-01-31");
    let ok = |months, reason, told, today, open| {
        extend(received, months, reason, d(told), d(today), open)
    };
    assert_eq!(
        ok(0, "r", "2026-02-01", "2026-02-01", true),
        Err(ExtensionError::Months)
    );
    assert_eq!(
        ok(3, "r", "2026-02-01", "2026-02-01", true),
        Err(ExtensionError::Months)
    );
    assert_eq!(
        ok(1, "  ", "2026-02-01", "2026-02-01", true),
        Err(ExtensionError::ReasonMissing)
    );
    // The first month ends on 28 February; 1 March is too late.
    assert_eq!(
        ok(1, "r", "2026-02-28", "2026-03-01", true),
        Err(ExtensionError::TooLate)
    );
    assert!(ok(1, "r", "2026-02-28", "2026-02-28", true).is_ok());
    assert_eq!(
        ok(1, "r", "2026-01-30", "2026-02-02", true),
        Err(ExtensionError::ToldOutsideFirstMonth)
    );
    assert_eq!(
        ok(1, "r", "2026-02-05", "2026-02-02", true),
        Err(ExtensionError::ToldOutsideFirstMonth),
        "told in the future"
    );
    assert_eq!(
        ok(1, "r", "2026-02-01", "2026-02-01", false),
        Err(ExtensionError::AlreadySettled)
    );
}

#[test]
fn a_request_is_overdue_only_after_its_deadline_day_while_a_decision_is_due() {
    let due = d("2026-02-28");
    assert!(!overdue(due, None, &[], d("2026-02-28")));
    assert!(overdue(due, None, &[], d("2026-03-01")));
    assert!(!overdue(due, Some(Verdict::Granted), &[], d("2027-01-01")));
    assert!(!overdue(due, Some(Verdict::Refused), &[], d("2027-01-01")));
    let pending = EscalationState {
        level: EscalationLevel::Manager,
        deadline: d("2026-03-20"),
        verdict: None,
    };
    assert!(!overdue(
        due,
        Some(Verdict::Refused),
        &[pending],
        d("2026-03-20")
    ));
    assert!(overdue(
        due,
        Some(Verdict::Refused),
        &[pending],
        d("2026-03-21")
    ));
}

#[test]
fn escalation_runs_manager_then_privacy_officer_each_fourteen_days() {
    assert_eq!(escalation_deadline(d("2026-02-20")), Some(d("2026-03-06")));
    let refused = Some(Verdict::Refused);
    assert_eq!(next_escalation(None, &[]), None);
    assert_eq!(next_escalation(Some(Verdict::Granted), &[]), None);
    assert_eq!(
        next_escalation(refused, &[]),
        Some(EscalationLevel::Manager)
    );
    let at = |level, verdict| EscalationState {
        level,
        deadline: d("2026-03-06"),
        verdict,
    };
    let m_pending = at(EscalationLevel::Manager, None);
    let m_refused = at(EscalationLevel::Manager, Some(Verdict::Refused));
    let m_granted = at(EscalationLevel::Manager, Some(Verdict::Granted));
    let po_refused = at(EscalationLevel::PrivacyOfficer, Some(Verdict::Refused));
    assert_eq!(next_escalation(refused, &[m_pending]), None);
    assert_eq!(next_escalation(refused, &[m_granted]), None);
    assert_eq!(
        next_escalation(refused, &[m_refused]),
        Some(EscalationLevel::PrivacyOfficer)
    );
    assert_eq!(next_escalation(refused, &[m_refused, po_refused]), None);
    assert_eq!(status(false, None, &[]), Status::Received);
    assert_eq!(status(true, None, &[]), Status::Extended);
    assert_eq!(status(false, refused, &[]), Status::Refused);
    assert_eq!(
        status(false, refused, &[m_pending]),
        Status::Escalated(EscalationLevel::Manager)
    );
    assert_eq!(
        status(false, refused, &[m_granted]),
        Status::GrantedOnEscalation
    );
    assert_eq!(status(false, refused, &[m_refused]), Status::Refused);
    assert_eq!(
        status(false, refused, &[m_refused, po_refused]),
        Status::RefusalUpheld
    );
}

#[test]
fn codes_round_trip_and_dates_parse_strictly() {
    for k in RightKind::ALL {
        assert_eq!(RightKind::from_code(k.code()), Some(k));
    }
    assert_eq!(RightKind::from_code("delete"), None);
    assert!(parse_date("2026-02-30").is_none());
    assert!(parse_date("2026-2-3").is_none());
    assert!(parse_date("20260203").is_none());
}
