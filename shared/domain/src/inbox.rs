//! The per-user inbox: every event that goes to a `user:{id}` room is also kept for that user
//! for a while ([`DEFAULT_RETENTION_SECS`]), so a client that was away can ask for what it
//! missed (`resume`) and be told honestly whether it got everything.
//!
//! An inbox is a sequence: each kept event has a **position** (1, 2, 3, … with no holes, given
//! by the store in the order events are appended) and the inbox has an **epoch** (when it was
//! created, ms), so positions of a re-created inbox are never confused with older ones. A
//! client holds a [`Cursor`], the opaque form of (epoch, position) bound to its user; it asks
//! for every kept event after it.
//!
//! [`Continuity`] is the answer to "did you get everything?": `ok` when every event after the
//! cursor is still kept (so the replay is exact), `lost` when some have expired or the inbox
//! was re-created since (replay what is kept; the client refetches over HTTP).
//!
//! Appends are idempotent by [`EventKey`] (order, `seq`, event name): a stream batch that is
//! retried appends nothing twice and gets the positions the events were given the first time,
//! so it re-sends them with the same cursor.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId};
use crate::protocol::ServerMessage;

/// How long an inbox keeps an event by default: 24 hours.
pub const DEFAULT_RETENTION_SECS: i64 = 24 * 60 * 60;
/// The most events one `resume` replays; a client further behind is told continuity was lost
/// (and resumes again from the last cursor it got, or refetches).
pub const MAX_REPLAY: usize = 500;
/// Events read from the store per page while replaying.
pub const REPLAY_PAGE: usize = 100;

/// What identifies an event in an inbox: the order, the order's `seq` and the event name. Two
/// appends with the same key are the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(String);

impl EventKey {
    /// The key of `message`; `None` for a message that is not derived from an order change (and
    /// so never goes to an inbox).
    pub fn of(message: &ServerMessage) -> Option<EventKey> {
        let order_id: &OrderId = match message {
            ServerMessage::OrderNew(d) => &d.order_id,
            ServerMessage::StatusUpdate(d) => &d.order_id,
            ServerMessage::NewAssignment(d) => &d.order_id,
            ServerMessage::LocationUpdate(d) => &d.order_id,
            ServerMessage::EtaUpdate(d) => &d.order_id,
            _ => return None,
        };
        let seq = message.seq()?;
        Some(EventKey(format!(
            "{order_id}#{seq:020}#{}",
            message.event_name()
        )))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as stored, read back.
    pub fn from_stored(text: impl Into<String>) -> EventKey {
        EventKey(text.into())
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event to keep: its key and the message as it is first sent, without a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    /// Identity, for idempotent appends.
    pub key: EventKey,
    /// The message (its `cursor` and `replayed` are not set).
    pub message: ServerMessage,
}

impl InboxEvent {
    /// The inbox event of `message`; `None` when it is not derived from an order change.
    pub fn of(message: &ServerMessage) -> Option<InboxEvent> {
        Some(InboxEvent {
            key: EventKey::of(message)?,
            message: message.clone(),
        })
    }
}

/// Where an append put its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The inbox's epoch.
    pub epoch: u64,
    /// The position of each event, in the order given: a new one, or the one it already had.
    pub positions: Vec<u64>,
    /// How many of them were new (the rest were kept already).
    pub added: usize,
}

/// A kept event, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptEvent {
    /// Its position.
    pub position: u64,
    /// The message as it was first sent, without a cursor.
    pub message: ServerMessage,
}

/// A read of an inbox.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InboxPage {
    /// The inbox's epoch (0 when the user has no inbox yet).
    pub epoch: u64,
    /// The position of the newest event ever appended (0 when none), as read before the events.
    pub head: u64,
    /// The kept events after the requested position, oldest first.
    pub events: Vec<KeptEvent>,
}

/// A user's position in their inbox. Its text form ([`Cursor::encode`]) is opaque to clients,
/// ordered for one user (same epoch: by position), and bound to the user: another user's cursor
/// does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The epoch of the inbox (0: before the user had one).
    pub epoch: u64,
    /// The position of the last event seen (0: none).
    pub position: u64,
}

/// A cursor that is not one of ours: malformed, or issued to another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not valid")]
pub struct InvalidCursor;

/// FNV-1a (32 bits) of the user id: binds a cursor to its user (not a secret: a cursor only
/// ever reads its own user's inbox; the tag tells a mix-up from a position).
fn user_tag(user: &UserId) -> u32 {
    user.as_str().bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

impl Cursor {
    /// The cursor before anything: the start of whatever inbox the user has.
    pub const START: Cursor = Cursor {
        epoch: 0,
        position: 0,
    };

    /// The opaque text of this cursor for `user`: `{epoch}-{position}-{tag}` in fixed-width
    /// hexadecimal, so that one user's cursors of one epoch sort like their positions.
    pub fn encode(&self, user: &UserId) -> String {
        format!(
            "{:012x}-{:012x}-{:08x}",
            self.epoch,
            self.position,
            user_tag(user)
        )
    }

    /// Reads a cursor `user` was given. Fails when it is malformed or was issued to another
    /// user.
    pub fn decode(text: &str, user: &UserId) -> Result<Cursor, InvalidCursor> {
        let mut parts = text.split('-');
        let (Some(epoch), Some(position), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidCursor);
        };
        let hex = |s: &str, width: usize| {
            (s.len() == width && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
                .ok_or(InvalidCursor)
        };
        let cursor = Cursor {
            epoch: hex(epoch, 12)?,
            position: hex(position, 12)?,
        };
        if hex(tag, 8)? != u64::from(user_tag(user)) {
            return Err(InvalidCursor);
        }
        Ok(cursor)
    }
}

/// Whether a replay gave the client everything it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Continuity {
    /// Every event after the client's position was replayed: nothing was missed.
    Ok,
    /// Some events could not be replayed (expired, or more than a replay carries): refetch
    /// over HTTP.
    Lost,
}

/// Where a replay of `cursor` reads from in an inbox at `epoch` and `head`, or why the cursor
/// is not ours.
///
/// - Same epoch: after the cursor's position; a position beyond the head was never issued.
/// - The cursor is from an older epoch (or [`Cursor::START`]), or the user has no inbox any
///   more: from the start of the inbox.
/// - A newer epoch than an existing inbox's was never issued.
pub fn replay_from(cursor: Cursor, epoch: u64, head: u64) -> Result<u64, InvalidCursor> {
    match cursor.epoch.cmp(&epoch) {
        std::cmp::Ordering::Equal if cursor.position <= head => Ok(cursor.position),
        std::cmp::Ordering::Less => Ok(0),
        // The inbox is gone (the user has none now): the cursor's events are lost.
        std::cmp::Ordering::Greater if epoch == 0 => Ok(0),
        _ if cursor == Cursor::START => Ok(0),
        _ => Err(InvalidCursor),
    }
}

/// Whether a replay for `cursor` that read from position `from` (see [`replay_from`]) saw
/// everything: the first event replayed is the one right after `from` (positions have no
/// holes), or nothing was appended after it; and a cursor of an older epoch than the inbox's
/// lost what that epoch held, unless it is [`Cursor::START`].
///
/// `first` is the position of the first event replayed; `head` the inbox's head read before
/// the events (a head past `from` with no event replayed means the events expired).
pub fn continuity(
    cursor: Cursor,
    epoch: u64,
    from: u64,
    first: Option<u64>,
    head: u64,
) -> Continuity {
    let same_inbox = cursor.epoch == epoch || cursor == Cursor::START;
    let complete = match first {
        Some(first) => first == from + 1,
        None => head <= from,
    };
    if same_inbox && complete {
        Continuity::Ok
    } else {
        Continuity::Lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn a_cursor_reads_back_for_its_user_only() {
        let cursor = Cursor {
            epoch: 1_764_740_000_000,
            position: 42,
        };
        let text = cursor.encode(&user("chef-1"));
        assert_eq!(Cursor::decode(&text, &user("chef-1")), Ok(cursor));
        assert_eq!(Cursor::decode(&text, &user("chef-2")), Err(InvalidCursor));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let me = user("chef-1");
        for text in [
            "",
            "abc",
            "000000000001-000000000002",
            "000000000001-000000000002-zzzzzzzz",
            "000000000001-000000000002-00000000-00",
            "1-2-3",
            "+00000000001-000000000002-00000000",
        ] {
            assert_eq!(Cursor::decode(text, &me), Err(InvalidCursor), "{text:?}");
        }
    }

    #[test]
    fn one_users_cursors_of_one_epoch_sort_like_their_positions() {
        let me = user("driver-7");
        let texts: Vec<String> = [1u64, 9, 10, 255, 256, 70_000]
            .iter()
            .map(|&position| {
                Cursor {
                    epoch: 1_764_740_000_000,
                    position,
                }
                .encode(&me)
            })
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(sorted, texts);
    }

    #[test]
    fn a_replay_reads_after_the_cursor_of_the_same_inbox_and_from_the_start_of_a_newer_one() {
        let now = Cursor {
            epoch: 5,
            position: 3,
        };
        assert_eq!(replay_from(now, 5, 7), Ok(3));
        assert_eq!(replay_from(now, 5, 3), Ok(3));
        assert_eq!(replay_from(now, 9, 2), Ok(0));
        assert_eq!(replay_from(Cursor::START, 5, 7), Ok(0));
        assert_eq!(replay_from(Cursor::START, 0, 0), Ok(0));
        // Never issued: beyond the head, or from an epoch that has not begun.
        assert_eq!(replay_from(now, 5, 2), Err(InvalidCursor));
        assert_eq!(replay_from(now, 4, 9), Err(InvalidCursor));
        // The inbox is gone.
        assert_eq!(replay_from(now, 0, 0), Ok(0));
    }

    #[test]
    fn continuity_is_ok_only_when_nothing_between_the_cursor_and_the_replay_is_missing() {
        let at = |position| Cursor { epoch: 5, position };
        // The next event is the first replayed, or nothing was appended since.
        assert_eq!(continuity(at(3), 5, 3, Some(4), 9), Continuity::Ok);
        assert_eq!(continuity(at(3), 5, 3, None, 3), Continuity::Ok);
        // Events 4.. expired: the first kept is later, or none is kept though the head moved.
        assert_eq!(continuity(at(3), 5, 3, Some(6), 9), Continuity::Lost);
        assert_eq!(continuity(at(3), 5, 3, None, 9), Continuity::Lost);
        // The inbox was re-created: what the old one held is gone.
        assert_eq!(continuity(at(3), 8, 0, Some(1), 2), Continuity::Lost);
        // From the start: ok while event 1 is still kept.
        assert_eq!(continuity(Cursor::START, 5, 0, Some(1), 4), Continuity::Ok);
        assert_eq!(
            continuity(Cursor::START, 5, 0, Some(2), 4),
            Continuity::Lost
        );
        assert_eq!(continuity(Cursor::START, 0, 0, None, 0), Continuity::Ok);
    }
}
