//! Handler-level tests of the Telegram transport with `teloxide_tests`: the
//! dispatcher's handler tree against teloxide_tests' mock Bot API, with the
//! real engine behind it. Fast and in-process; the same behaviours are also
//! tested end to end against the emulator in `tests/telegram.rs`.

use std::sync::Arc;

use factbot::answer::Engine;
use factbot::facts::{Dataset, Store};
use factbot::transport::telegram::handler_tree;
use factbot::transport::telegram::handlers::Ctx;
use factbot::transport::telegram::listener::Inbox;
use teloxide::dptree::deps;
use teloxide::types::ParseMode;
use teloxide::Bot;
use teloxide_tests::{MockBot, MockCallbackQuery, MockGroupChat, MockMe, MockMessageText};

const ME: &str = "factbot_test_bot";

fn ctx() -> Arc<Ctx> {
    let store = Store::temporary().unwrap();
    store.import(&Dataset::embedded().unwrap()).unwrap();
    let inbox = Inbox::new(store.tree("telegram_inbox").unwrap());
    Arc::new(Ctx {
        engine: Arc::new(Engine::new(store).unwrap()),
        inbox,
        waiters: Default::default(),
        admins: Vec::new(),
    })
}

fn bot_with(
    update: impl teloxide_tests::IntoUpdate,
) -> MockBot<teloxide::RequestError, teloxide_tests::mock_bot::DistributionKey> {
    let mut bot = MockBot::new(update, handler_tree::<Bot>());
    bot.me(MockMe::new().username(ME));
    bot.dependencies(deps![ctx()]);
    bot
}

#[tokio::test]
async fn start_in_a_private_chat_answers_in_html_as_a_reply() {
    let mut bot = bot_with(MockMessageText::new().text("/start"));
    bot.dispatch().await;
    let r = bot.get_responses();
    let sent = r.sent_messages_text.last().expect("a reply");
    assert!(sent.message.text().unwrap_or_default().contains("factbot"));
    assert_eq!(sent.bot_request.parse_mode, Some(ParseMode::Html));
    assert!(
        sent.bot_request.reply_parameters.is_some(),
        "replies to the question"
    );
    assert!(sent.message.reply_markup().is_some(), "topic buttons");
}

#[tokio::test]
async fn groups_get_answers_only_when_addressed() {
    let group = || MockGroupChat::new().build();
    let cases = [
        (format!("/trade@{ME}"), true),
        ("/trade@OtherBot".to_string(), false),
        ("/trade".to_string(), true),
        ("chatting about trade".to_string(), false),
        (format!("@{ME} how much trade in 2011?"), true),
        ("/kick".to_string(), false),
    ];
    for (text, answered) in cases {
        let mut bot = bot_with(MockMessageText::new().text(&text).chat(group()));
        bot.dispatch().await;
        let n = bot.get_responses().sent_messages.len();
        assert_eq!(n > 0, answered, "{text:?}: {n} replies");
    }
}

#[tokio::test]
async fn a_source_button_edits_the_message_and_answers_the_query() {
    let mut bot = bot_with(MockMessageText::new().text("/trade"));
    bot.dispatch().await;
    let trade = bot
        .get_responses()
        .sent_messages
        .last()
        .cloned()
        .expect("a reply");
    bot.update(
        MockCallbackQuery::new()
            .data("/source trade.2011")
            .message(trade.clone()),
    );
    bot.dispatch().await;
    let r = bot.get_responses();
    let edited = r
        .edited_messages_text
        .last()
        .expect("the message was edited");
    assert_eq!(edited.message.id, trade.id);
    assert!(edited
        .bot_request
        .text
        .contains("<blockquote>Total trade turnover"));
    assert_eq!(r.answered_callback_queries.len(), 1);
}

#[tokio::test]
async fn user_html_is_escaped() {
    let mut bot = bot_with(MockMessageText::new().text("/search <b>tariffs</b> & co"));
    bot.dispatch().await;
    let r = bot.get_responses();
    let text = &r
        .sent_messages_text
        .last()
        .expect("a reply")
        .bot_request
        .text;
    assert!(
        text.contains("&lt;b&gt;tariffs&lt;/b&gt; &amp; co"),
        "{text}"
    );
}
