//! The order lifecycle: every transition, who may make it, and what it records.

mod common;

use common::*;
use rnd_domain::identity::Actor;
use rnd_domain::order::{Action, OrderStatus, TransitionError};

#[test]
fn the_happy_path_walks_every_status_and_records_history_and_timestamps() {
    let view = order_in(OrderStatus::Delivered);
    let o = &view.order;
    let statuses: Vec<_> = o.status_history.iter().map(|c| c.status).collect();
    assert_eq!(statuses, OrderStatus::ALL[..8].to_vec());
    let who: Vec<_> = o
        .status_history
        .iter()
        .map(|c| c.changed_by.as_str())
        .collect();
    assert_eq!(
        who,
        [
            "customer-1",
            "admin-1",
            "chef-1",
            "chef-1",
            "admin-1",
            "driver-1",
            "driver-1",
            "driver-1"
        ]
    );
    assert_eq!(o.created_at, t(0));
    assert_eq!(o.payment_confirmed_at, Some(t(1)));
    assert_eq!(o.accepted_at, Some(t(2)));
    assert_eq!(o.ready_at, Some(t(3)));
    assert_eq!(o.assigned_at, Some(t(4)));
    assert_eq!(o.picked_up_at, Some(t(5)));
    assert_eq!(o.in_transit_at, Some(t(6)));
    assert_eq!(o.delivered_at, Some(t(7)));
    assert_eq!(o.driver_id().map(|d| d.as_str()), Some("driver-1"));
    assert_eq!(view.seq(), 8, "placed at 1, seven transitions");
    assert_eq!(view.live.seq, 8);
    assert_eq!(view.live.status, OrderStatus::Delivered);
    assert_eq!(view.live.driver_id, o.driver_id().cloned());
}

/// Who may take each action from the state the action starts in.
#[test]
fn authorization_matrix_of_role_ownership_and_action() {
    use OrderStatus::*;
    let cases: Vec<(OrderStatus, Action, Actor, Result<(), &str>)> = vec![
        (Pending, Action::ConfirmPayment, admin(), Ok(())),
        (
            Pending,
            Action::ConfirmPayment,
            customer(),
            Err("forbidden"),
        ),
        (Pending, Action::ConfirmPayment, chef(), Err("forbidden")),
        (PaymentConfirmed, Action::Accept, chef(), Ok(())),
        (
            PaymentConfirmed,
            Action::Accept,
            other_chef(),
            Err("stranger"),
        ),
        (PaymentConfirmed, Action::Accept, admin(), Err("forbidden")),
        (
            PaymentConfirmed,
            Action::Accept,
            customer(),
            Err("forbidden"),
        ),
        (Accepted, Action::MarkReady, chef(), Ok(())),
        (Accepted, Action::MarkReady, other_chef(), Err("stranger")),
        (ReadyForPickup, assign(), admin(), Ok(())),
        (ReadyForPickup, assign(), chef(), Err("forbidden")),
        (ReadyForPickup, assign(), driver(), Err("stranger")),
        (AssignedToDriver, Action::PickUp, driver(), Ok(())),
        (
            AssignedToDriver,
            Action::PickUp,
            other_driver(),
            Err("stranger"),
        ),
        (AssignedToDriver, Action::PickUp, admin(), Err("forbidden")),
        (PickedUp, Action::StartTransit, driver(), Ok(())),
        (PickedUp, Action::StartTransit, chef(), Err("forbidden")),
        (InTransit, Action::Deliver, driver(), Ok(())),
        (InTransit, Action::Deliver, other_driver(), Err("stranger")),
        (InTransit, Action::Deliver, customer(), Err("forbidden")),
        // Cancellation windows.
        (Pending, cancel(), customer(), Ok(())),
        (PaymentConfirmed, cancel(), customer(), Ok(())),
        (Accepted, cancel(), customer(), Err("invalid")),
        (Pending, cancel(), other_customer(), Err("stranger")),
        (Pending, cancel(), chef(), Ok(())),
        (Accepted, cancel(), chef(), Ok(())),
        (ReadyForPickup, cancel(), chef(), Err("invalid")),
        (ReadyForPickup, cancel(), admin(), Ok(())),
        (InTransit, cancel(), admin(), Ok(())),
        (Delivered, cancel(), admin(), Err("invalid")),
        (Cancelled, cancel(), admin(), Err("invalid")),
        (AssignedToDriver, cancel(), driver(), Err("forbidden")),
    ];
    for (from, action, who, expected) in cases {
        let view = order_in(from);
        let label = format!("{} by {} from {from}", action.name(), who.user_id);
        let got = view.apply(&who, action, t(30));
        match (expected, got) {
            (Ok(()), Ok(next)) => assert_ne!(next.order.status, from, "{label}"),
            (Err("forbidden"), Err(TransitionError::Forbidden { stranger, .. })) => {
                assert!(!stranger, "{label}: is a party to the order")
            }
            (Err("stranger"), Err(TransitionError::Forbidden { stranger, .. })) => {
                assert!(stranger, "{label}: has nothing to do with the order")
            }
            (Err("invalid"), Err(TransitionError::InvalidTransition { from: f, .. })) => {
                assert_eq!(f, from, "{label}")
            }
            (want, got) => panic!("{label}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn every_action_is_refused_from_every_status_it_does_not_start_from() {
    for from in OrderStatus::ALL {
        let view = order_in(from);
        for (who, action, start) in [
            (admin(), Action::ConfirmPayment, OrderStatus::Pending),
            (chef(), Action::Accept, OrderStatus::PaymentConfirmed),
            (chef(), Action::MarkReady, OrderStatus::Accepted),
            (admin(), assign(), OrderStatus::ReadyForPickup),
            (driver(), Action::PickUp, OrderStatus::AssignedToDriver),
            (driver(), Action::StartTransit, OrderStatus::PickedUp),
            (driver(), Action::Deliver, OrderStatus::InTransit),
        ] {
            if from == start {
                continue;
            }
            let result = view.apply(&who, action.clone(), t(40));
            assert!(
                matches!(
                    result,
                    Err(TransitionError::InvalidTransition { .. })
                        | Err(TransitionError::Forbidden { .. })
                ),
                "{} from {from} should be refused, got {result:?}",
                action.name()
            );
        }
    }
}

#[test]
fn cancelling_records_the_reason_and_the_time() {
    let view = order_in(OrderStatus::PaymentConfirmed);
    let next = view
        .apply(
            &customer(),
            Action::Cancel {
                reason: "  wrong address  ".into(),
            },
            t(9),
        )
        .unwrap();
    assert_eq!(next.order.status, OrderStatus::Cancelled);
    assert_eq!(next.order.cancelled_at, Some(t(9)));
    assert_eq!(
        next.order.cancellation_reason.as_deref(),
        Some("wrong address")
    );
    let last = next.order.status_history.last().unwrap();
    assert_eq!(last.reason.as_deref(), Some("wrong address"));
    assert_eq!(last.changed_by, customer().user_id);
}

#[test]
fn a_cancellation_needs_a_reason_of_sane_length() {
    let view = order_in(OrderStatus::Pending);
    let empty = view.apply(
        &customer(),
        Action::Cancel {
            reason: "   ".into(),
        },
        t(1),
    );
    assert!(matches!(empty, Err(TransitionError::Invalid(e)) if e.field == "reason"));
    let long = view.apply(
        &customer(),
        Action::Cancel {
            reason: "x".repeat(501),
        },
        t(1),
    );
    assert!(matches!(long, Err(TransitionError::Invalid(_))));
}

#[test]
fn a_cancellation_reason_is_text_like_every_other_without_control_characters() {
    // GIVEN a pending order
    let view = order_in(OrderStatus::Pending);
    for reason in [
        "wrong\u{0}address",
        "bell\u{7}",
        "two\nlines",
        "c1\u{85}control",
    ] {
        // WHEN its customer cancels it with a reason holding a control character
        let result = view.apply(
            &customer(),
            Action::Cancel {
                reason: reason.into(),
            },
            t(1),
        );
        // THEN it is refused naming the reason, as a name or an address would be
        assert!(
            matches!(&result, Err(TransitionError::Invalid(e)) if e.field == "reason"),
            "{reason:?}: {result:?}"
        );
    }
}

#[test]
fn a_transition_moves_the_sequence_past_live_location_updates() {
    let mut view = order_in(OrderStatus::InTransit);
    // Locations accepted since the last transition moved only the live item.
    view.live.seq += 5;
    let next = view.apply(&driver(), Action::Deliver, t(50)).unwrap();
    assert_eq!(next.order.seq, view.live.seq + 1);
    assert_eq!(next.live.seq, view.live.seq + 1);
}

#[test]
fn visibility_is_limited_to_the_orders_parties_and_admins() {
    let view = order_in(OrderStatus::InTransit);
    for who in [customer(), chef(), driver(), admin()] {
        assert!(view.order.is_visible_to(&who), "{}", who.user_id);
    }
    for who in [other_customer(), other_chef(), other_driver()] {
        assert!(!view.order.is_visible_to(&who), "{}", who.user_id);
    }
    // A user id that matches but with another role is not the party.
    let customer_as_driver = actor("customer-1", rnd_domain::Role::Driver);
    assert!(!view.order.is_visible_to(&customer_as_driver));
}
