//! The application: the answering engine and the notification hub side by
//! side, and the one place a line of chat is routed to either.
//!
//! Neither knows the other: [`Engine`] answers questions from the catalog,
//! [`Hub`] keeps subscriptions and the outbox. Transports hold an [`App`]
//! and call [`App::handle`]; a notification command
//! ([`Command::Notify`]) goes to the hub, everything else to the engine.
//! [`open_app`] opens the store and brings its dataset up to date;
//! [`serve`] runs the bot until it is told to stop.

mod serve;
mod start;

use std::sync::Arc;

pub use serve::serve;
pub use start::{open_app, open_indexed, start_dataset, Removals};

use crate::answer::{Engine, Request};
use crate::catalog::Live;
use crate::facts::{Store, StoreError};
use crate::notify::commands::Who;
use crate::notify::Hub;
use crate::query::{self, Command, Input};
use crate::reply::Reply;

/// What a running bot serves from. Share it behind an `Arc`.
pub struct App {
    /// Answers questions (and owns the catalog, swapped by live imports).
    engine: Engine,
    /// Subscriptions, announcements and the outbox the worker delivers.
    hub: Hub,
}

impl App {
    /// The application over an already imported store.
    pub fn new(store: Store) -> Result<App, StoreError> {
        Self::open(store, &mut |_, _| {})
    }

    /// [`App::new`], reporting an index build's progress as
    /// `progress(facts done, facts)`.
    pub fn open(store: Store, progress: &mut dyn FnMut(usize, usize)) -> Result<App, StoreError> {
        let hub = Hub::open(&store)?;
        let engine = Engine::open(store, progress)?;
        Ok(App { engine, hub })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Notifications: where transports register their deliverer and
    /// report chats that moved or went away.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The store both work over (per-chat settings, the inboxes).
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// The catalog answers and notifications are made from.
    pub fn live(&self) -> &Arc<Live> {
        self.engine.live()
    }

    /// Answers one line of chat. Never panics on any input.
    pub fn handle(&self, req: &Request) -> Reply {
        let input = query::parse(req.text, req.prefixes);
        self.handle_input(req, input)
    }

    /// Answers `input` at once if that needs neither the disk nor the
    /// notification hub ([`Engine::answer_in_memory`]); otherwise hands it
    /// back for [`App::handle_input`] on a blocking thread.
    pub fn answer_in_memory(&self, req: &Request, input: Input) -> Result<Reply, Input> {
        self.engine.answer_in_memory(req, input)
    }

    /// Answers an already parsed line (transports that parsed it to decide
    /// addressing pass it on instead of parsing twice). A one-shot request
    /// (`factbot ask`) has no notifications: the engine refuses or declines
    /// those commands.
    pub fn handle_input(&self, req: &Request, input: Input) -> Reply {
        match input {
            Input::Command {
                command: Command::Notify(cmd),
                ..
            } if !req.read_only => {
                let lang = self.engine.lang(req, &Input::Empty);
                let who = Who {
                    chat: req.chat,
                    chat_admin: req.chat_admin,
                    bot_admin: req.bot_admin,
                    private: req.private,
                };
                self.hub.command(who, lang, &cmd)
            }
            other => self.engine.handle_input(req, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{ChatKey, Dataset};
    use crate::reply::{render_plain, ReplyKind};

    fn app() -> App {
        let store = Store::temporary().unwrap();
        store.import(&Dataset::embedded().unwrap()).unwrap();
        App::new(store).unwrap()
    }

    /// Notification commands reach the hub, questions the engine; the
    /// engine on its own says it has no notifications.
    #[test]
    fn routes_notification_commands_to_the_hub_and_questions_to_the_engine() {
        let app = app();
        let req = Request {
            private: true,
            ..Request::new(&ChatKey::Telegram(5), "/subscribe trade")
        };
        let r = app.handle(&req);
        assert_eq!(r.kind, ReplyKind::Info, "{}", render_plain(&r));
        let listed =
            render_plain(&app.handle(&Request::new(&ChatKey::Telegram(5), "/subscriptions")));
        assert!(listed.contains("trade"), "{listed}");
        let alone = app.engine().handle(&req);
        assert_eq!(alone.kind, ReplyKind::Error);
        assert!(render_plain(&alone).contains("not available"));
        let answer =
            render_plain(&app.handle(&Request::new(&ChatKey::Telegram(5), "trade in 2011")));
        assert!(answer.contains("769"), "{answer}");
    }

    /// Topics echoed back by `/subscribe` are cut short like every echo:
    /// one small message for a huge one.
    #[test]
    fn a_huge_subscribe_gets_one_short_reply() {
        let app = app();
        let text = format!("/subscribe {}", "\"".repeat(60_000));
        let req = Request {
            private: true,
            chat_admin: true,
            ..Request::new(&ChatKey::Telegram(5), &text)
        };
        let out = render_plain(&app.handle(&req));
        assert!(out.chars().count() < 1_000, "{} chars", out.len());
        assert!(out.contains('…'), "{out}");
    }
}
