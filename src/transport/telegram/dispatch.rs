//! Running the handlers: one update of a chat at a time, a short queue per
//! chat, nothing that waits for one chat holding up another, and a bounded
//! stop.
//!
//! teloxide's `Dispatcher` gives each chat a queue of 64 updates and, when
//! one is full, waits — for every chat. With replies paced at 1 a second per
//! chat (one per 3 s in groups), one user sending many questions stalled
//! every other chat. Here:
//! - the updates of a chat that need an answer (questions, button presses)
//!   are handled one at a time, in arrival order;
//! - at most [`MAX_WAITING`] of them wait behind the one being handled; a
//!   newer one pushes out the oldest waiting, which is recorded as handled
//!   with no answer ([`Gate`]). Someone who sends a burst of questions gets
//!   answers to the latest ones and, once per burst, a note saying how many
//!   earlier ones were skipped — rather than answers trickling in for
//!   minutes, long after they stopped being useful;
//! - everything else — group chatter the bot does not answer, service
//!   messages, inline queries, other chats — is handled at once. Memory is
//!   bounded by chats × ([`MAX_WAITING`] + 1), not by how fast anyone types.
//!
//! On shutdown the listener stops at once (a long poll is cut short), the
//! handlers in flight get [`SHUTDOWN_GRACE`] to finish, and the rest are
//! cancelled: their updates stay in the inbox and are answered after the
//! restart. A handler that panics is logged and its update dropped, so it
//! cannot come back after every restart.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::stop::StopToken;
use teloxide::types::{Me, UpdateKind};
use teloxide::RequestError;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::handlers::{self, Ctx};
use super::route::{route, Route};
use super::TgBot;

/// Updates of one chat that may wait behind the one being handled. Replies
/// go out at 1 a second per chat (one per 3 s in groups), so the last of
/// them is answered within about 3 s (9 s in a group) of the one before.
pub const MAX_WAITING: usize = 3;

/// How long shutdown waits for handlers in flight before cancelling them;
/// with the listener's stop and the notification worker's this keeps the
/// whole process under 5 s from SIGTERM to exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How the gate treats an arriving update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A message the bot answers, in this chat: queued; may be skipped, and
    /// the chat is told.
    Question(i64),
    /// A button press under a message in this chat: queued behind the
    /// chat's questions; may be skipped (the button stops spinning).
    Press(i64),
    /// Anything else: handled at once.
    Free,
}

/// Decides how an update is admitted (pure; tested below).
pub fn admission(update: &Update, me: &Me) -> Admission {
    match &update.kind {
        UpdateKind::Message(msg) => match handlers::incoming(msg, me) {
            Some(incoming) if msg.migrate_to_chat_id().is_none() => {
                match route(incoming, me.username()) {
                    Route::Answer(_) => Admission::Question(msg.chat.id.0),
                    Route::Ignore => Admission::Free,
                }
            }
            _ => Admission::Free,
        },
        UpdateKind::CallbackQuery(q) => match (&q.data, &q.message) {
            (Some(_), Some(m)) => Admission::Press(m.chat().id.0),
            _ => Admission::Free,
        },
        _ => Admission::Free,
    }
}

/// The per-chat queues.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<HashMap<i64, Line>>>);

/// A chat with an update being handled.
#[derive(Default)]
struct Line {
    /// Updates waiting behind it, oldest first.
    waiting: VecDeque<Waiter>,
    /// Questions pushed out in this burst (since the chat was last idle).
    skipped: usize,
    /// Whether the chat has been told about this burst's skipped questions.
    told: bool,
}

struct Waiter {
    question: bool,
    turn: oneshot::Sender<Turn>,
}

enum Turn {
    /// Handle it; `Some(n)`: first tell the chat that `n` questions were
    /// skipped.
    Go(Option<usize>),
    Skip,
}

/// An update's place in its chat's queue.
pub struct Ticket {
    chat: i64,
    turn: Option<oneshot::Receiver<Turn>>,
    gate: Gate,
}

/// The right to handle an update of a chat; dropping it (also on a panic or
/// a cancellation) passes the turn to the next update of that chat.
pub struct Pass {
    chat: i64,
    gate: Gate,
}

/// What a ticket comes to.
pub enum Admitted {
    /// Handle the update; `Some(n)`: tell the chat first that `n` earlier
    /// questions were skipped.
    Go(Pass, Option<usize>),
    /// A newer update pushed this one out: record it with no answer.
    Skip,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Line>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an arriving update; call in arrival order. `None` for an
    /// update that is not queued.
    pub fn arrive(&self, admission: Admission) -> Option<Ticket> {
        let (chat, question) = match admission {
            Admission::Question(c) => (c, true),
            Admission::Press(c) => (c, false),
            Admission::Free => return None,
        };
        let (tx, rx) = oneshot::channel();
        match self.lock().entry(chat) {
            Entry::Vacant(e) => {
                e.insert(Line::default());
                let _ = tx.send(Turn::Go(None));
            }
            Entry::Occupied(mut e) => {
                let line = e.get_mut();
                line.waiting.push_back(Waiter { question, turn: tx });
                if line.waiting.len() > MAX_WAITING {
                    if let Some(old) = line.waiting.pop_front() {
                        line.skipped += usize::from(old.question);
                        let _ = old.turn.send(Turn::Skip);
                    }
                }
            }
        }
        Some(Ticket {
            chat,
            turn: Some(rx),
            gate: self.clone(),
        })
    }

    /// The update being handled in `chat` is done: the next one's turn.
    fn next(&self, chat: i64) {
        let mut lines = self.lock();
        let Some(line) = lines.get_mut(&chat) else {
            return;
        };
        while let Some(w) = line.waiting.pop_front() {
            let tell = (line.skipped > 0 && !line.told).then_some(line.skipped);
            if w.turn.send(Turn::Go(tell)).is_ok() {
                line.told |= tell.is_some();
                return;
            }
            // Its task was cancelled: the turn passes on.
        }
        lines.remove(&chat);
    }

    /// Chats with an update being handled (for tests).
    #[cfg(test)]
    fn busy(&self) -> usize {
        self.lock().len()
    }
}

impl Ticket {
    /// Waits for the update's turn.
    pub async fn wait(mut self) -> Admitted {
        let turn = match self.turn.as_mut() {
            Some(rx) => rx.await,
            None => return Admitted::Skip,
        };
        self.turn = None;
        match turn {
            Ok(Turn::Go(tell)) => Admitted::Go(
                Pass {
                    chat: self.chat,
                    gate: self.gate.clone(),
                },
                tell,
            ),
            Ok(Turn::Skip) | Err(_) => Admitted::Skip,
        }
    }
}

impl Drop for Ticket {
    /// A ticket dropped while waiting (its task cancelled): if its turn had
    /// come, pass it on; if not, closing it makes the gate pass it over.
    fn drop(&mut self) {
        if let Some(mut rx) = self.turn.take() {
            rx.close();
            if let Ok(Turn::Go(_)) = rx.try_recv() {
                self.gate.next(self.chat);
            }
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.gate.next(self.chat);
    }
}

/// Handles `replay` (updates from before a restart), then the listener's
/// `updates`, until the listener ends or `shutdown` is cancelled; then stops
/// the listener (`stop_listener`) and bounds the wait for handlers in
/// flight by [`SHUTDOWN_GRACE`].
pub async fn run<S, E>(
    ctx: Arc<Ctx>,
    bot: TgBot,
    me: Me,
    replay: Vec<Update>,
    updates: S,
    stop_listener: StopToken,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<Update, E>>,
    E: std::fmt::Display,
{
    let d = Dispatch {
        handler: Arc::new(super::handler_tree::<TgBot>()),
        deps: dptree::deps![me.clone(), Arc::clone(&ctx), bot.clone()],
        gate: Gate::default(),
        ctx,
        bot,
        me,
    };
    let mut tasks = JoinSet::new();
    if !replay.is_empty() {
        tracing::info!(
            count = replay.len(),
            "telegram: answering updates received before a restart"
        );
    }
    for u in replay {
        d.admit(&mut tasks, u);
    }
    let mut updates = std::pin::pin!(updates);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => report(done),
            next = updates.next() => match next {
                Some(Ok(u)) => d.admit(&mut tasks, u),
                Some(Err(e)) => tracing::error!(error = %e, "telegram: listener error"),
                None => break,
            },
        }
    }
    stop_listener.stop();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(done) = tasks.join_next().await {
            report(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            count = tasks.len(),
            "telegram: replies still in flight after {SHUTDOWN_GRACE:?}; leaving them to the restart"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "telegram: a handler task panicked");
        }
    }
}

struct Dispatch {
    handler: Arc<UpdateHandler<RequestError>>,
    deps: teloxide::dptree::di::DependencyMap,
    gate: Gate,
    ctx: Arc<Ctx>,
    bot: TgBot,
    me: Me,
}

impl Dispatch {
    /// Queues `update` in its chat (in arrival order) and starts its task.
    fn admit(&self, tasks: &mut JoinSet<()>, update: Update) {
        let ticket = self.gate.arrive(admission(&update, &self.me));
        let handler = Arc::clone(&self.handler);
        let mut deps = self.deps.clone();
        let ctx = Arc::clone(&self.ctx);
        let bot = self.bot.clone();
        tasks.spawn(async move {
            let mut _pass = None;
            if let Some(ticket) = ticket {
                match ticket.wait().await {
                    Admitted::Skip => {
                        handlers::skipped(&bot, &ctx, &update).await;
                        return;
                    }
                    Admitted::Go(pass, tell) => {
                        _pass = Some(pass);
                        if let Some(n) = tell {
                            handlers::tell_skipped(&bot, &ctx, &update, n).await;
                        }
                    }
                }
            }
            let id = update.id.0;
            deps.insert(update);
            let run = std::panic::AssertUnwindSafe(handler.dispatch(deps)).catch_unwind();
            match run.await {
                Ok(ControlFlow::Break(Ok(()))) => {}
                Ok(ControlFlow::Break(Err(e))) => {
                    tracing::error!(update_id = id, error = %e, "telegram: handler failed")
                }
                Ok(ControlFlow::Continue(deps)) => {
                    // No endpoint for this kind of update: nothing to answer.
                    let update: Arc<Update> = deps.get();
                    ctx.finish(&update);
                }
                Err(_) => {
                    tracing::error!(
                        update_id = id,
                        "telegram: a handler panicked; the update is dropped"
                    );
                    ctx.finish_id(id as i32);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket_now(t: &mut Ticket) -> Option<Turn> {
        t.turn.as_mut().and_then(|rx| rx.try_recv().ok())
    }

    #[tokio::test]
    async fn a_chat_runs_one_at_a_time_in_order() {
        let gate = Gate::default();
        let a1 = gate.arrive(Admission::Question(1)).unwrap();
        let a2 = gate.arrive(Admission::Question(1)).unwrap();
        let b1 = gate.arrive(Admission::Question(2)).unwrap();
        assert!(gate.arrive(Admission::Free).is_none());
        let Admitted::Go(p1, None) = a1.wait().await else {
            panic!("the first of a chat goes at once")
        };
        let Admitted::Go(pb, None) = b1.wait().await else {
            panic!("another chat does not wait")
        };
        let mut a2 = a2;
        assert!(ticket_now(&mut a2).is_none(), "the second waits");
        drop(p1);
        let Admitted::Go(p2, None) = a2.wait().await else {
            panic!("then the second goes")
        };
        drop((p2, pb));
        assert_eq!(gate.busy(), 0, "idle chats leave nothing behind");
    }

    #[tokio::test]
    async fn a_burst_keeps_the_newest_and_tells_once() {
        let gate = Gate::default();
        let first = gate.arrive(Admission::Question(7)).unwrap();
        let mut rest: Vec<Ticket> = (0..200)
            .map(|_| gate.arrive(Admission::Question(7)).unwrap())
            .collect();
        let Admitted::Go(pass, None) = first.wait().await else {
            panic!()
        };
        let kept: Vec<Ticket> = rest.split_off(200 - MAX_WAITING);
        for t in rest {
            assert!(matches!(t.wait().await, Admitted::Skip));
        }
        drop(pass);
        let mut tells = Vec::new();
        for t in kept {
            let Admitted::Go(p, tell) = t.wait().await else {
                panic!("the newest are answered")
            };
            tells.push(tell);
            drop(p);
        }
        assert_eq!(tells, [Some(200 - MAX_WAITING), None, None]);
        assert_eq!(gate.busy(), 0);
        // A skipped button press is not a skipped question; the next burst
        // is told again.
        let a = gate.arrive(Admission::Question(7)).unwrap();
        let press = gate.arrive(Admission::Press(7)).unwrap();
        let mut qs: VecDeque<Ticket> = (0..MAX_WAITING)
            .map(|_| gate.arrive(Admission::Question(7)).unwrap())
            .collect();
        assert!(matches!(press.wait().await, Admitted::Skip));
        drop(a);
        let Admitted::Go(p, tell) = qs.pop_front().unwrap().wait().await else {
            panic!()
        };
        assert_eq!(tell, None, "only a button press was skipped");
        for _ in 0..2 {
            qs.push_back(gate.arrive(Admission::Question(7)).unwrap());
        }
        drop(p);
        assert!(matches!(
            qs.pop_front().unwrap().wait().await,
            Admitted::Skip
        ));
        let Admitted::Go(p, tell) = qs.pop_front().unwrap().wait().await else {
            panic!()
        };
        assert_eq!(tell, Some(1));
        drop((p, qs));
        assert_eq!(gate.busy(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_task_passes_its_turn_on() {
        let gate = Gate::default();
        let a1 = gate.arrive(Admission::Question(1)).unwrap();
        let a2 = gate.arrive(Admission::Question(1)).unwrap();
        let a3 = gate.arrive(Admission::Question(1)).unwrap();
        // a2 is cancelled while waiting; a1 is cancelled holding its turn.
        drop(a2);
        drop(a1);
        assert!(matches!(a3.wait().await, Admitted::Go(_, None)));
        assert_eq!(gate.busy(), 0);
    }

    fn update(json: serde_json::Value) -> Update {
        // From text, as updates arrive: `from_value` cannot read an
        // `Update` (serde's flatten over a `Value`).
        serde_json::from_str(&json.to_string()).unwrap()
    }

    fn me() -> Me {
        serde_json::from_value(serde_json::json!({
            "id": 42, "is_bot": true, "first_name": "F", "username": "fbot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": true, "can_connect_to_business": false,
            "has_main_web_app": false
        }))
        .unwrap()
    }

    fn message(chat: i64, kind: &str, text: &str) -> Update {
        let chat = if kind == "private" {
            serde_json::json!({"id": chat, "type": kind, "first_name": "A"})
        } else {
            serde_json::json!({"id": chat, "type": kind, "title": "G"})
        };
        update(serde_json::json!({"update_id": 1, "message": {
            "message_id": 1, "date": 1, "chat": chat,
            "from": {"id": 5, "is_bot": false, "first_name": "A"}, "text": text}}))
    }

    #[test]
    fn only_what_the_bot_answers_is_queued() {
        let me = me();
        assert_eq!(
            admission(&message(5, "private", "hello"), &me),
            Admission::Question(5)
        );
        assert_eq!(
            admission(&message(-9, "group", "/trade"), &me),
            Admission::Question(-9)
        );
        // Chatter in a group is not a question: a busy group is never told
        // its chatter was skipped.
        assert_eq!(
            admission(&message(-9, "group", "lunch?"), &me),
            Admission::Free
        );
        let inline = update(serde_json::json!({"update_id": 2, "inline_query": {
            "id": "1", "from": {"id": 5, "is_bot": false, "first_name": "A"},
            "query": "trade", "offset": ""}}));
        assert_eq!(admission(&inline, &me), Admission::Free);
    }
}
