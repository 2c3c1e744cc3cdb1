'use strict';
/*
 * Telegram Bot API emulator for factbot's integration tests.
 *
 * Base: the npm package telegram-test-api (its express app, its storage
 * `tg.storage.userMessages` / `tg.storage.botMessages`, its id counters
 * `tg.updateId` / `tg.messageId` / `tg.callbackId`, and its route list).
 * This file is the compatibility layer: it puts one route function AHEAD of
 * the package's routes (`routes.unshift`) and swaps the package's
 * `unknownMethod` route for a Telegram-shaped 404. Each place that papers over
 * a deviation of the package from the real Bot API is marked "DEVIATION Dn";
 * README.md lists them all, plus the control API used by tests.
 */
const TelegramServer = require('telegram-test-api');
const { routes } = require('telegram-test-api/lib/routes/index');
const { unknownMethod } = require('telegram-test-api/lib/routes/bot/unknownMethod');

const PORT = Number(process.env.TG_EMU_PORT || 9000);
const HOST = '127.0.0.1';
const BOT_USERNAME = process.env.TG_EMU_BOT_USERNAME || 'factbot_test_bot';
const BOT_NAME = process.env.TG_EMU_BOT_NAME || 'Factbot Test';
const VERBOSE = process.env.TG_EMU_LOG === '1';
const MAX_POLL_S = 50; // cap for both getUpdates and /control/messages waits

const now = () => Math.floor(Date.now() / 1000);
const int = (v, d) => (v === undefined || v === null || v === '' || !Number.isFinite(Number(v)) ? d : Math.trunc(Number(v)));
const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
const key = (chat, id) => `${Number(chat)}:${Number(id)}`;
const bump = (obj, k) => { obj[k] = (obj[k] || 0) + 1; };
const log = (...a) => console.log(new Date().toISOString(), ...a);
const ok = (res, result) => res.status(200).json({ ok: true, result });
const fail = (res, code, description, parameters) =>
  res.status(code).json({ ok: false, error_code: code, description, ...(parameters ? { parameters } : {}) });
const NOT_MODIFIED = 'Bad Request: message is not modified: specified new message content and reply markup '
  + 'are exactly the same as a current content and reply markup of the message';

let tg; // the telegram-test-api TelegramServer instance
const pollers = new Map(); // bot token -> pending getUpdates long poll
const eventWaiters = new Set(); // pending GET /control/messages long polls
const st = { seq: 0, faultSeq: 0 };
// Uploaded files: file_id -> {data: Buffer, mime, width, height, file_unique_id}.
// Outside `st` so /control/reset keeps them, as Telegram keeps a bot's files;
// DELETE /control/files forgets them (stored file ids then go stale).
const files = new Map();
let fileSeq = 0;
const MAX_PHOTO_BYTES = 10 * 1024 * 1024; // Telegram: photos up to 10 MB
const MAX_CAPTION = 1024;
function reset() {
  Object.assign(st, {
    chats: new Map(), // chat id -> Chat object (type declared by tests or inferred)
    msgs: new Map(), // "chat:message_id" -> full Message (user's and bot's)
    events: [], // what the bot did: sent / edited / deleted / callback_answer / inline_answer
    faults: [],
    commands: new Map(),
    members: new Map(), // "chat:user" -> status declared with /control/member
    callbacks: new Map(), // callback_query id -> chat id
    sends: [], // timestamps for the enforce-limits mode
    stats: { calls: {}, ok: {}, errors: {}, faults: {}, chats: {}, uploads: {} },
    limits: { enabled: process.env.TG_EMU_ENFORCE_LIMITS === '1', global_per_sec: 30, chat_per_sec: 1, group_per_min: 20 },
  });
  if (tg) { tg.storage.userMessages = []; tg.storage.botMessages = []; }
}
reset();

// DEVIATION D2: the package's getMe lacks is_bot, can_join_groups,
// can_read_all_group_messages, supports_inline_queries, has_main_web_app
// (teloxide's `Me` requires them) and has a fixed username. The id is the
// numeric part of the token, as on Telegram.
function botUser(token) {
  const id = Number(String(token).split(':')[0]);
  return { id: Number.isSafeInteger(id) && id > 0 ? id : 4242424242, is_bot: true, first_name: BOT_NAME, username: BOT_USERNAME };
}

// DEVIATION D3 (second half): the package answers chat.type "private" for every
// chat. We remember a Chat per id: declared by the test client, else inferred
// (positive = private, <= -10^12 = supergroup ("-100..." ids), other negative = group).
function chatFor(id, decl = {}) {
  const n = Number(id);
  const prev = st.chats.get(String(n)) || {};
  const d = Object.fromEntries(Object.entries(decl).filter(([, v]) => v !== undefined && v !== null));
  const type = d.type || prev.type || inferType(n);
  const chat = { id: n, type };
  if (type === 'private') {
    chat.first_name = d.first_name || prev.first_name || 'Tester';
    const u = d.username || prev.username; if (u) chat.username = u;
  } else {
    chat.title = d.title || prev.title || `Test ${type} ${n}`;
    const u = type !== 'group' && (d.username || prev.username); if (u) chat.username = u;
  }
  st.chats.set(String(n), chat);
  return chat;
}
function inferType(n) { return n > 0 ? 'private' : n <= -1e12 ? 'supergroup' : 'group'; }
const chatInstance = (chatId) => String(BigInt(Math.trunc(Number(chatId)) || 0) * 1000003n + 4242n);
const testUser = (chatId, from) => ({ id: chatId > 0 ? chatId : 1001, is_bot: false, first_name: 'Tester', username: 'tester', language_code: 'en', ...from });
const withoutReply = ({ reply_to_message, ...flat }) => flat; // Telegram does not nest replies

// Telegram clients send bot_command / mention entities; the test client may
// give `entities` itself, otherwise they are derived from the text.
function autoEntities(text) {
  const re = /(^|\s)(\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?|@[A-Za-z0-9_]{5,32})(?=$|\s|[.,!?;:])/g;
  return [...text.matchAll(re)].map((m) => ({
    type: m[2][0] === '/' ? 'bot_command' : 'mention', offset: m.index + m[1].length, length: m[2].length,
  }));
}

function record(ev) {
  st.events.push({ seq: ++st.seq, at: Date.now(), ...ev });
  for (const w of [...eventWaiters]) w();
}

// ---- updates queue: tg.storage.userMessages, with real getUpdates semantics ----
const mine = (token) => (u) => u.botToken === token || u.botToken === '*';
const pendingFor = (token) => tg.storage.userMessages.filter(mine(token));
function forget(token, pred) {
  const m = mine(token);
  tg.storage.userMessages = tg.storage.userMessages.filter((u) => !(m(u) && pred(u)));
}
function wakePollers() { for (const p of [...pollers.values()]) p.check(); pushWebhooks(); }

// DEVIATION D8: the package pushes an update to a webhook only when the update
// names that bot's token (control-API updates are for any bot), never sends the
// secret_token header, drops the update when the push fails, and pushes one
// update at a time. Here, as Telegram's webhook sender does (tdlib
// telegram-bot-api WebhookActor): every pending update for the webhook's
// token is pushed with X-Telegram-Bot-Api-Secret-Token; updates of one chat
// go one at a time and in order (the next only after the previous got a 2xx),
// different chats in parallel over at most `max_connections` (setWebhook,
// default 40) requests at once; an update is forgotten only after a 2xx
// answer, otherwise its chat's lane is retried a second later while the
// other chats carry on.
const hooks = new Map(); // token -> { url, secret, max, inflight: Set<update>, retryAt: Map<lane, ms> }
function laneOf(u) {
  const f = TelegramServer.formatUpdate(u);
  const body = Object.entries(f).find(([k]) => k !== 'update_id');
  const v = body && body[1];
  const chat = v && ((v.chat && v.chat.id) ?? (v.message && v.message.chat && v.message.chat.id));
  return chat !== undefined && chat !== null ? `chat:${chat}` : `update:${u.updateId}`;
}
function pushWebhooks() {
  const now = Date.now();
  for (const [token, hook] of hooks) {
    const seen = new Set();
    for (const u of pendingFor(token)) {
      const lane = laneOf(u);
      if (seen.has(lane)) continue; // an earlier update of this chat goes first
      seen.add(lane);
      if (hook.inflight.has(u) || (hook.retryAt.get(lane) || 0) > now) continue;
      if (hook.inflight.size >= hook.max) break;
      hook.inflight.add(u);
      pushOne(token, hook, u, lane);
    }
  }
}
async function pushOne(token, hook, u, lane) {
  const headers = { 'content-type': 'application/json' };
  if (hook.secret) headers['x-telegram-bot-api-secret-token'] = hook.secret;
  let okay = false;
  try {
    const r = await fetch(hook.url, { method: 'POST', headers, body: JSON.stringify(TelegramServer.formatUpdate(u)) });
    okay = r.status >= 200 && r.status < 300;
  } catch (_) { okay = false; }
  hook.inflight.delete(u);
  if (okay) { forget(token, (x) => x === u); hook.retryAt.delete(lane); } else hook.retryAt.set(lane, Date.now() + 1000);
  if (hooks.get(token) === hook) pushWebhooks();
}
setInterval(pushWebhooks, 1000).unref();
async function addUpdate(token, body) {
  const u = { ...tg.getCommonFields(token || '*'), raw: body }; // '*' = any bot token
  await tg.addUserUpdate(u); // package storage + update_id counter (+ webhook if one is set)
  wakePollers();
  return u.updateId;
}

// DEVIATION D4: the package's callback_query updates lack `chat_instance`
// (required by teloxide) and its client helper builds a message without
// `message_id` and `date`. Also strips the `botToken` bookkeeping field the
// package leaves inside stock `message` updates. Updates created by this layer
// are stored complete (`raw`) and returned as they are.
const stockFormat = TelegramServer.formatUpdate;
TelegramServer.formatUpdate = (u) => {
  if (u.raw) return { update_id: u.updateId, ...u.raw };
  const out = stockFormat(u);
  if (out.callback_query) {
    const m = { message_id: u.messageId, date: Math.floor(u.time / 1000), ...out.callback_query.message };
    out.callback_query = { ...out.callback_query, message: m, chat_instance: chatInstance(m.chat && m.chat.id) };
  }
  if (out.message) { delete out.message.botToken; out.message.date = out.message.date || Math.floor(u.time / 1000); }
  return out;
};

// DEVIATION D6: the package's getUpdates ignores offset/limit/timeout, returns
// at once (a polling bot spins at ~half a core) and marks updates read as soon
// as they are returned. Here: `offset` confirms (forgets) updates with
// id < offset, a negative offset keeps only the last -offset ones; unconfirmed
// updates are returned again; `timeout` holds the request open until an update
// arrives; `limit` is honoured; a second concurrent poll for the same token gets
// 409 like on Telegram. `allowed_updates` is ignored.
// As Telegram's update queue does (tdlib TQueue::get), an offset "in the
// future" (above the next update id + 10) or "in the past" (below it by more
// than 2,000,000) is ignored: the poll returns from the oldest unconfirmed
// update and forgets nothing. That is what a bot sees after update ids start
// over (POST /control/next_update_id): its offset is far from the new ids.
const QUEUE_SPAN = 2000000;
function getUpdates(req, res) {
  const p = req.tg, token = req.params.token;
  if (hooks.has(token)) return fail(res, 409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
  let offset = int(p.offset, 0);
  const limit = clamp(int(p.limit, 100), 1, 100);
  if (offset > tg.updateId + 10 || (offset > 0 && offset < tg.updateId - QUEUE_SPAN)) offset = 0;
  const timeout = clamp(int(p.timeout, 0), 0, MAX_POLL_S);
  if (offset > 0) forget(token, (u) => u.updateId < offset);
  if (offset < 0) { const keep = new Set(pendingFor(token).slice(offset)); forget(token, (u) => !keep.has(u)); }
  const take = () => pendingFor(token).slice(0, limit).map((u) => TelegramServer.formatUpdate(u));
  const prev = pollers.get(token);
  if (prev) prev.finish(409);
  const first = take();
  if (first.length || timeout === 0) return ok(res, first);
  let done = false;
  const poller = {
    finish(code) {
      if (done) return;
      done = true; clearTimeout(timer);
      if (pollers.get(token) === poller) pollers.delete(token);
      if (code === 409) fail(res, 409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
      else if (code !== 'closed') ok(res, take());
    },
    check() { if (pendingFor(token).length) poller.finish(); },
  };
  const timer = setTimeout(() => poller.finish(), timeout * 1000);
  res.on('close', () => poller.finish('closed'));
  pollers.set(token, poller);
}

// The text Telegram counts: with parse_mode HTML, tags removed and each
// entity one character.
function visibleText(text, parseMode) {
  if (!/^html$/i.test(parseMode || '')) return text;
  return text.replace(/<[^>]*>/g, '').replace(/&(lt|gt|amp|quot|#\d+|#x[0-9a-f]+);/gi, '.');
}

// ---- photos (not in the package): sendPhoto with an upload or a file_id ----
// The pixel size of a PNG (IHDR) or JPEG (first SOFn); null if neither.
function imageSize(b) {
  if (b.length >= 24 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    && b.subarray(12, 16).toString('latin1') === 'IHDR') {
    return { mime: 'image/png', width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  if (b.length > 4 && b[0] === 0xff && b[1] === 0xd8) {
    for (let i = 2; i + 9 < b.length;) {
      if (b[i] !== 0xff) return null;
      const marker = b[i + 1], len = b.readUInt16BE(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { mime: 'image/jpeg', width: b.readUInt16BE(i + 7), height: b.readUInt16BE(i + 5) };
      }
      i += 2 + len;
    }
  }
  return null;
}
// Telegram keeps a photo in several sizes (thumbnails first, each with its own
// file_id) and the original scaled to at most 1280 px on the long side.
function storePhoto(data, dim) {
  const seq = ++fileSeq, long = Math.max(dim.width, dim.height), sizes = [];
  for (const [tag, side] of [['s', 90], ['m', 320], ['x', 800], ['y', 1280]]) {
    if (long <= side && tag !== 's') break;
    const f = Math.min(1, side / long);
    sizes.push({ tag, width: Math.round(dim.width * f), height: Math.round(dim.height * f) });
    if (long <= side) break;
  }
  if (long > 90 && long <= 1280 && sizes[sizes.length - 1].width !== dim.width) sizes.push({ tag: 'w', width: dim.width, height: dim.height });
  return sizes.map((z, i) => {
    const id = `AgACAgIAEmu${seq}${z.tag}`, last = i === sizes.length - 1;
    const size = last ? data.length : Math.max(1, Math.round(data.length * (z.width * z.height) / (dim.width * dim.height)));
    const ps = { file_id: id, file_unique_id: `AQADemu${seq}${z.tag}`, file_size: size, width: z.width, height: z.height };
    files.set(id, { data, mime: dim.mime, width: z.width, height: z.height, sizes: null, photo: ps });
    return ps;
  }).map((ps, _, all) => { files.get(ps.file_id).sizes = all; return ps; });
}
const WRONG_FILE = 'Bad Request: wrong file identifier/HTTP URL specified';
function sendPhoto(req, res) {
  const p = req.tg, token = req.params.token;
  if (p.chat_id === undefined || p.chat_id === '') return fail(res, 400, 'Bad Request: chat_id is empty');
  if (!Number.isFinite(Number(p.chat_id))) return fail(res, 400, 'Bad Request: chat not found');
  const ref = typeof p.photo === 'string' ? p.photo : '';
  const part = ref.startsWith('attach://') ? req.files[ref.slice(9)] : req.files.photo;
  let sizes, uploaded = false;
  if (part) {
    if (part.data.length > MAX_PHOTO_BYTES) return fail(res, 400, 'Bad Request: file is too big');
    const dim = imageSize(part.data);
    if (!dim) return fail(res, 400, 'Bad Request: IMAGE_PROCESS_FAILED');
    if (dim.width + dim.height > 10000 || Math.max(dim.width, dim.height) > 20 * Math.min(dim.width, dim.height) || !dim.width || !dim.height) {
      return fail(res, 400, 'Bad Request: PHOTO_INVALID_DIMENSIONS');
    }
    sizes = storePhoto(part.data, dim);
    uploaded = true;
    bump(st.stats.uploads, req.params.method);
  } else if (ref.startsWith('attach://')) {
    return fail(res, 400, 'Bad Request: wrong remote file identifier specified: the attachment is missing');
  } else if (files.has(ref)) {
    sizes = files.get(ref).sizes;
  } else if (/^https?:\/\//i.test(ref)) {
    return fail(res, 400, 'Bad Request: failed to get HTTP URL content');
  } else if (!ref) {
    return fail(res, 400, 'Bad Request: there is no photo in the request');
  } else {
    return fail(res, 400, WRONG_FILE);
  }
  const caption = typeof p.caption === 'string' ? p.caption : undefined;
  if (caption && visibleText(caption, p.parse_mode).length > MAX_CAPTION) return fail(res, 400, 'Bad Request: message caption is too long');
  const stock = tg.addBotMessage({ chat_id: p.chat_id, text: caption || '' }, token);
  const msg = { message_id: stock.message_id, from: botUser(token), chat: chatFor(p.chat_id), date: now(), photo: sizes };
  if (caption) msg.caption = caption;
  if (p.reply_markup && p.reply_markup.inline_keyboard) msg.reply_markup = { inline_keyboard: p.reply_markup.inline_keyboard };
  const replyTo = int(p.reply_to_message_id ?? (p.reply_parameters && p.reply_parameters.message_id), 0);
  const orig = replyTo && st.msgs.get(key(msg.chat.id, replyTo));
  if (orig) msg.reply_to_message = withoutReply(orig);
  st.msgs.set(key(msg.chat.id, msg.message_id), msg);
  record({ kind: 'sent', method: req.params.method, chat_id: msg.chat.id, message_id: msg.message_id, caption, parse_mode: p.parse_mode,
    photo_file_id: sizes[sizes.length - 1].file_id, uploaded, message: msg });
  ok(res, msg);
}

// ---- bot API methods (overriding the package's, case-insensitive like Telegram) ----
const H = {
  getMe: (req, res) => ok(res, {
    ...botUser(req.params.token), can_join_groups: true, can_read_all_group_messages: false,
    supports_inline_queries: process.env.TG_EMU_INLINE === '1', can_connect_to_business: false, has_main_web_app: false,
    // newer Bot API getMe-only flags; harmless for clients that do not know them
    has_topics_enabled: false, allows_users_to_create_topics: false, supports_guest_queries: false, can_manage_bots: false,
  }),
  getUpdates,
  sendPhoto,
  // DEVIATION D3: the package returns `date` in milliseconds, chat.type always
  // "private", no `from`, no reply_to_message. We keep its storage and message
  // id counter (tg.addBotMessage) and answer a real Message.
  sendMessage(req, res) {
    const p = req.tg, token = req.params.token;
    if (p.chat_id === undefined || p.chat_id === '') return fail(res, 400, 'Bad Request: chat_id is empty');
    if (!Number.isFinite(Number(p.chat_id))) return fail(res, 400, 'Bad Request: chat not found');
    if (typeof p.text !== 'string' || !p.text.trim()) return fail(res, 400, 'Bad Request: message text is empty');
    // DEVIATION D3 (length): Telegram's 4096 limit applies to the text after
    // entity parsing, in UTF-16 code units (JS string length): an emoji
    // outside the BMP counts 2, HTML tags nothing, `&amp;` one.
    if (!p.parse_mode || /^html$/i.test(p.parse_mode)) {
      if (visibleText(p.text, p.parse_mode).length > 4096) return fail(res, 400, 'Bad Request: message is too long');
    }
    const stock = tg.addBotMessage({ ...p }, token);
    const msg = { message_id: stock.message_id, from: botUser(token), chat: chatFor(p.chat_id), date: now(), text: p.text };
    if (p.message_thread_id) msg.message_thread_id = int(p.message_thread_id, 0);
    if (Array.isArray(p.entities) && p.entities.length) msg.entities = p.entities;
    if (p.reply_markup && p.reply_markup.inline_keyboard) msg.reply_markup = { inline_keyboard: p.reply_markup.inline_keyboard };
    const replyTo = int(p.reply_to_message_id ?? (p.reply_parameters && p.reply_parameters.message_id), 0);
    const orig = replyTo && st.msgs.get(key(msg.chat.id, replyTo));
    if (orig) msg.reply_to_message = withoutReply(orig);
    st.msgs.set(key(msg.chat.id, msg.message_id), msg);
    record({ kind: 'sent', method: req.params.method, chat_id: msg.chat.id, message_id: msg.message_id, text: msg.text, parse_mode: p.parse_mode, message: msg });
    ok(res, msg);
  },
  // DEVIATION D5: the package's editMessageText / editMessageReplyMarkup answer
  // `result: null`; Telegram answers the edited Message (or true for inline
  // messages), drops the inline keyboard when reply_markup is omitted, and
  // refuses no-op edits with "message is not modified". Edits are recorded.
  editMessageText: edit,
  editMessageReplyMarkup: edit,
  deleteMessage(req, res) { // package answers result:null and cannot find our messages
    const p = req.tg, k = key(p.chat_id, p.message_id), m = st.msgs.get(k);
    if (!m) return fail(res, 400, 'Bad Request: message to delete not found');
    st.msgs.delete(k);
    tg.storage.botMessages = tg.storage.botMessages.filter((u) => !(String(u.message.chat_id) === String(m.chat.id) && u.messageId === m.message_id));
    record({ kind: 'deleted', method: req.params.method, chat_id: m.chat.id, message_id: m.message_id, text: m.text });
    ok(res, true);
  },
  // DEVIATION D5: the package answers `result: null`; Telegram answers true.
  answerCallbackQuery(req, res) {
    const p = req.tg;
    record({ kind: 'callback_answer', method: req.params.method, chat_id: st.callbacks.get(String(p.callback_query_id)) ?? null,
      callback_query_id: String(p.callback_query_id), text: p.text, show_alert: !!p.show_alert, url: p.url });
    ok(res, true);
  },
  answerInlineQuery(req, res) {
    const p = req.tg;
    const results = Array.isArray(p.results) ? p.results : [];
    if (results.some((r) => r && r.type === 'photo' && r.photo_file_id !== undefined && !files.has(String(r.photo_file_id)))) {
      return fail(res, 400, WRONG_FILE);
    }
    record({ kind: 'inline_answer', method: req.params.method, chat_id: null, inline_query_id: String(p.inline_query_id), results: p.results });
    ok(res, true);
  },
  sendChatAction: (req, res) => ok(res, true),
  // Not in the package. A member's status is what the test declared with
  // /control/member; otherwise the bot itself is an administrator and anyone
  // else a plain member.
  getChatMember(req, res) {
    const p = req.tg, chat = Number(p.chat_id), user = Number(p.user_id);
    if (!Number.isFinite(chat)) return fail(res, 400, 'Bad Request: chat not found');
    if (!Number.isFinite(user)) return fail(res, 400, 'Bad Request: user not found');
    const bot = botUser(req.params.token);
    const status = st.members.get(key(chat, user)) || (user === bot.id ? 'administrator' : 'member');
    const u = user === bot.id ? bot : { id: user, is_bot: false, first_name: 'Tester' };
    const m = { status, user: u };
    if (status === 'creator') Object.assign(m, { is_anonymous: false });
    if (status === 'administrator') {
      Object.assign(m, { is_anonymous: false, can_be_edited: false, can_manage_chat: true, can_change_info: true,
        can_post_messages: true, can_edit_messages: true, can_delete_messages: true, can_manage_video_chats: true,
        can_invite_users: true, can_restrict_members: true, can_pin_messages: true, can_promote_members: false,
        can_post_stories: false, can_edit_stories: false, can_delete_stories: false });
    }
    ok(res, m);
  },
  // DEVIATION D1: getWebhookInfo, setMyCommands, getMyCommands and
  // deleteMyCommands are unknown to the package (HTTP 500, non-Telegram body);
  // setWebhook / deleteWebhook answer result:null / ignore drop_pending_updates.
  getWebhookInfo: (req, res) => ok(res, {
    url: (hooks.get(req.params.token) || {}).url || '', has_custom_certificate: false,
    pending_update_count: pendingFor(req.params.token).length,
  }),
  setWebhook(req, res) {
    if (req.tg.url) {
      hooks.set(req.params.token, { url: req.tg.url, secret: req.tg.secret_token,
        max: clamp(int(req.tg.max_connections, 40), 1, 100), inflight: new Set(), retryAt: new Map() });
    }
    else hooks.delete(req.params.token);
    ok(res, true);
    pushWebhooks();
  },
  deleteWebhook(req, res) {
    hooks.delete(req.params.token);
    if (req.tg.drop_pending_updates === true || req.tg.drop_pending_updates === 'true') forget(req.params.token, () => true);
    ok(res, true);
  },
  setMyCommands(req, res) { st.commands.set(cmdKey(req), req.tg.commands || []); ok(res, true); },
  getMyCommands: (req, res) => ok(res, st.commands.get(cmdKey(req)) || []),
  deleteMyCommands(req, res) { st.commands.delete(cmdKey(req)); ok(res, true); },
};
const HL = new Map(Object.entries(H).map(([k, v]) => [k.toLowerCase(), v]));
const cmdKey = (req) => `${req.params.token}|${JSON.stringify(req.tg.scope || { type: 'default' })}|${req.tg.language_code || ''}`;

function edit(req, res) {
  const p = req.tg, method = req.params.method, isText = /text$/i.test(method);
  if (isText && (typeof p.text !== 'string' || !p.text.trim())) return fail(res, 400, 'Bad Request: message text is empty');
  const markup = p.reply_markup && p.reply_markup.inline_keyboard ? { inline_keyboard: p.reply_markup.inline_keyboard } : undefined;
  if (p.inline_message_id) {
    record({ kind: 'edited', method, chat_id: null, inline_message_id: String(p.inline_message_id), text: p.text, reply_markup: markup });
    return ok(res, true);
  }
  const cur = st.msgs.get(key(p.chat_id, p.message_id));
  if (!cur) return fail(res, 400, 'Bad Request: message to edit not found');
  if (!cur.from || !cur.from.is_bot) return fail(res, 400, "Bad Request: message can't be edited");
  if (isText && cur.photo) return fail(res, 400, 'Bad Request: there is no text in the message to edit');
  const next = { ...cur, edit_date: now() };
  delete next.reply_markup;
  if (markup) next.reply_markup = markup;
  if (isText) {
    next.text = p.text; delete next.entities;
    if (Array.isArray(p.entities) && p.entities.length) next.entities = p.entities;
  }
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  if (next.text === cur.text && same(next.entities, cur.entities) && same(next.reply_markup, cur.reply_markup)) return fail(res, 400, NOT_MODIFIED);
  st.msgs.set(key(p.chat_id, p.message_id), next);
  if (isText) tg.editMessageText({ ...p }); else tg.editMessageReplyMarkup({ ...p }); // keep package storage in sync
  record({ kind: 'edited', method, chat_id: next.chat.id, message_id: next.message_id, text: next.text, parse_mode: p.parse_mode, message: next });
  ok(res, next);
}

// ---- fault injection and optional rate limits ----
const KINDS = new Set(['429', '500', '400', '403', 'migrate', 'drop', 'delay']);
function findFault(method, chat) {
  const m = method.toLowerCase();
  for (const f of st.faults) {
    if (!(f.remaining > 0)) continue;
    if (!(f.method ? f.method.toLowerCase() === m : m !== 'getupdates')) continue; // no `method`: anything but getUpdates
    if (!(f.chat_id === undefined || String(f.chat_id) === chat)) continue;
    if (f.nth) { // only each chat's nth matching request (e.g. the 2nd part of a long message)
      const n = (f.seen[String(chat)] || 0) + 1;
      f.seen[String(chat)] = n;
      if (n !== f.nth) continue;
    }
    return f;
  }
  return undefined;
}
function forbidden(chat) {
  const type = chat === undefined ? 'private' : (st.chats.get(String(Number(chat))) || { type: inferType(Number(chat)) }).type;
  return { private: 'Forbidden: bot was blocked by the user', group: 'Forbidden: bot was kicked from the group chat',
    supergroup: 'Forbidden: bot was kicked from the supergroup chat' }[type] || 'Forbidden: bot is not a member of the channel chat';
}
function serveFault(f, req, res, next, chat, count) {
  switch (f.kind) {
    case '429': return fail(res, 429, `Too Many Requests: retry after ${f.retry_after}`, { retry_after: f.retry_after });
    case '500': return fail(res, 500, f.description || 'Internal Server Error');
    case '400': return fail(res, 400, f.description || 'Bad Request');
    case '403': return fail(res, 403, f.description || forbidden(chat));
    case 'migrate': return fail(res, 400, 'Bad Request: group chat was upgraded to a supergroup chat', { migrate_to_chat_id: f.to });
    case 'delay': return setTimeout(next, f.ms); // then processed normally, even if the client gave up
    case 'drop':
      if (!f.after) return req.socket.destroy(); // lost before Telegram saw it
      res.json = (body) => { count(body); req.socket.destroy(); }; // processed, answer lost
      return next();
    default: return next();
  }
}
function limitRetryAfter(chat) {
  const t = Date.now(), L = st.limits;
  st.sends = st.sends.filter((s) => t - s.t < 60000);
  const checks = [[1000, () => true, L.global_per_sec], [1000, (s) => s.chat === chat, L.chat_per_sec]];
  if (Number(chat) < 0) checks.push([60000, (s) => s.chat === chat, L.group_per_min]);
  for (const [ms, pred, max] of checks) {
    const w = st.sends.filter((s) => t - s.t < ms && pred(s));
    if (w.length >= max) return Math.max(1, Math.ceil((w[0].t + ms - t) / 1000));
  }
  st.sends.push({ t, chat });
  return 0;
}

// Runs before every bot method: parameters, stats, faults, limits.
// DEVIATION D9: the package has no multipart parser, and teloxide sends some
// methods (setWebhook, sendPhoto) as multipart/form-data. Parsed here on
// bytes: text fields become parameters, parts with a filename become
// `req.files[name]` = {filename, content_type, data: Buffer} (sendPhoto
// refers to one as "attach://name", as teloxide does, or names it `photo`).
function readMultipart(req) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(req.headers['content-type'] || '');
  if (!m) return Promise.resolve(null);
  const boundary = Buffer.from('--' + (m[1] || m[2]));
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0, tooBig = false;
    req.on('data', (c) => { size += c.length; if (size > MAX_PHOTO_BYTES + 65536) tooBig = true; else chunks.push(c); });
    req.on('end', () => {
      if (tooBig) return resolve({ tooBig: true });
      const body = Buffer.concat(chunks), fields = {}, parts = {};
      let pos = body.indexOf(boundary);
      while (pos >= 0) {
        const start = pos + boundary.length, next = body.indexOf(boundary, start);
        if (next < 0) break;
        const part = body.subarray(start, next), sep = part.indexOf('\r\n\r\n');
        pos = next;
        if (sep < 0) continue;
        const head = part.subarray(0, sep).toString('utf8');
        let data = part.subarray(sep + 4);
        if (data.length >= 2 && data[data.length - 2] === 13 && data[data.length - 1] === 10) data = data.subarray(0, data.length - 2);
        const name = /name="([^"]*)"/i.exec(head);
        if (!name) continue;
        const file = /filename="([^"]*)"/i.exec(head);
        if (file) {
          const ct = /content-type:\s*([^\r\n]+)/i.exec(head);
          parts[name[1]] = { filename: file[1], content_type: ct ? ct[1].trim() : 'application/octet-stream', data: Buffer.from(data) };
        } else fields[name[1]] = data.toString('utf8');
      }
      resolve({ fields, files: parts });
    });
    req.on('error', () => resolve(null));
  });
}

async function gate(req, res, next) {
  const method = req.params.method;
  req.files = {};
  if (/^multipart\//i.test(req.headers['content-type'] || '')) {
    const mp = await readMultipart(req);
    if (!mp) return fail(res, 400, 'Bad Request: unreadable multipart body');
    if (mp.tooBig) return fail(res, 413, 'Request Entity Too Large');
    if (Object.keys(mp.files).length && !/^sendphoto$/i.test(method)) {
      return fail(res, 400, `Bad Request: telegram emulator does not support file uploads to ${method}`);
    }
    req.body = mp.fields;
    req.files = mp.files;
  }
  const p = { ...req.query, ...(req.body || {}) }; // GET query, JSON, form or multipart bodies
  for (const [k, v] of Object.entries(p)) { // form-encoded requests carry objects as JSON strings
    if (typeof v === 'string' && /^[[{]/.test(v)) { try { p[k] = JSON.parse(v); } catch (_) { /* keep string */ } }
  }
  req.tg = p;
  const chat = p.chat_id === undefined ? undefined : String(p.chat_id);
  bump(st.stats.calls, method);
  const count = (body) => {
    if (!body || !body.ok) return bump(st.stats.errors, method);
    bump(st.stats.ok, method);
    if (chat !== undefined && /^(send|edit|delete|copy|forward)/i.test(method)) bump(st.stats.chats[chat] ||= {}, method);
  };
  const json = res.json.bind(res);
  res.json = (body) => { count(body); return json(body); };
  if (VERBOSE && !/^getupdates$/i.test(method)) log('bot', method, JSON.stringify(p).slice(0, 300));
  const f = findFault(method, chat);
  if (f) {
    f.remaining -= 1; f.served += 1;
    bump(st.stats.faults[method] ||= {}, f.kind);
    log(`fault #${f.id} ${f.kind} served to ${method}${chat ? ` chat ${chat}` : ''}`);
    return serveFault(f, req, res, next, chat, count);
  }
  if (st.limits.enabled && /^send/i.test(method) && !/^sendchataction$/i.test(method)) {
    const ra = limitRetryAfter(chat);
    if (ra) {
      bump(st.stats.faults[method] ||= {}, 'rate_limit');
      return fail(res, 429, `Too Many Requests: retry after ${ra}`, { retry_after: ra });
    }
  }
  next();
}

// ---- control API for tests (plain HTTP + JSON) ----
const cok = (res, result, extra) => res.json({ ok: true, result, ...extra });
const bad = (res, description) => res.status(400).json({ ok: false, error_code: 400, description });
const wrap = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);
const view = ({ seen, ...f }) => ({ ...f, remaining: Number.isFinite(f.remaining) ? f.remaining : null });

function controlRoutes(app) {
  app.get('/control/health', (req, res) => cok(res, { port: PORT, bot_username: BOT_USERNAME }));
  app.post('/control/reset', (req, res) => { reset(); cok(res, true, { last_seq: st.seq }); });
  app.post('/control/chat', (req, res) => {
    const b = req.body || {};
    if (!Number.isFinite(Number(b.chat_id))) return bad(res, 'chat_id (number) required');
    cok(res, chatFor(b.chat_id, { type: b.type, title: b.title, username: b.username, first_name: b.first_name }));
  });
  app.post('/control/member', (req, res) => { // {chat_id, user_id, status: creator|administrator|member|left|kicked}
    const b = req.body || {};
    if (!Number.isFinite(Number(b.chat_id)) || !Number.isFinite(Number(b.user_id))) return bad(res, 'chat_id and user_id (numbers) required');
    if (!['creator', 'administrator', 'member', 'left', 'kicked'].includes(b.status)) return bad(res, 'status: creator|administrator|member|left|kicked');
    st.members.set(key(b.chat_id, b.user_id), b.status);
    cok(res, true);
  });
  app.post('/control/message', wrap(async (req, res) => {
    const b = req.body || {}, cid = Number(b.chat_id);
    if (b.chat_id === undefined || !Number.isFinite(cid)) return bad(res, 'chat_id (number) required');
    if (typeof b.text !== 'string' || !b.text) return bad(res, 'text required');
    const from = testUser(cid, b.from);
    const chat = chatFor(cid, { type: b.chat_type, title: b.chat_title, ...(cid > 0 ? { first_name: from.first_name, username: from.username } : {}) });
    const msg = { message_id: tg.messageId, from, chat, date: now(), text: b.text };
    const entities = Array.isArray(b.entities) ? b.entities : autoEntities(b.text);
    if (entities.length) msg.entities = entities;
    if (b.reply_to_message_id !== undefined) {
      const o = st.msgs.get(key(cid, b.reply_to_message_id));
      if (!o) return bad(res, `message ${b.reply_to_message_id} not found in chat ${cid}`);
      msg.reply_to_message = withoutReply(o);
    }
    tg.messageId += 1;
    st.msgs.set(key(cid, msg.message_id), msg);
    cok(res, { update_id: await addUpdate(b.token, { message: msg }), message: msg });
  }));
  app.post('/control/callback', wrap(async (req, res) => {
    const b = req.body || {}, cid = Number(b.chat_id), m = st.msgs.get(key(b.chat_id, b.message_id));
    if (!m) return bad(res, `message ${b.message_id} not found in chat ${b.chat_id}`);
    const buttons = ((m.reply_markup || {}).inline_keyboard || []).flat();
    const btn = buttons.find((x) => (b.button !== undefined ? x.text === b.button : x.callback_data === String(b.data)));
    if (!btn && !b.force) return bad(res, `no inline button ${JSON.stringify(b.button ?? b.data)} on message ${m.message_id} (pass force:true to send anyway)`);
    const id = String(tg.callbackId++);
    st.callbacks.set(id, cid);
    const cq = { id, from: testUser(cid, b.from), message: m, chat_instance: chatInstance(cid), data: btn ? btn.callback_data : String(b.data) };
    cok(res, { update_id: await addUpdate(b.token, { callback_query: cq }), callback_query: cq });
  }));
  app.post('/control/inline_query', wrap(async (req, res) => {
    const b = req.body || {};
    const iq = { id: String(tg.callbackId++), from: testUser(0, b.from), query: String(b.query ?? ''), offset: String(b.offset ?? '') };
    if (b.chat_type) iq.chat_type = b.chat_type;
    cok(res, { update_id: await addUpdate(b.token, { inline_query: iq }), inline_query: iq });
  }));
  app.post('/control/update', wrap(async (req, res) => { // any raw update body, e.g. {"my_chat_member":{...}}
    const b = req.body || {};
    if (!b.update || typeof b.update !== 'object') return bad(res, 'update (object) required');
    cok(res, { update_id: await addUpdate(b.token, b.update) });
  }));
  // Telegram: "If there are no new updates for at least a week, then
  // identifier of the next update will be chosen randomly instead of
  // sequentially." This sets the id the next update gets (up or down).
  app.post('/control/next_update_id', (req, res) => {
    const n = Number((req.body || {}).update_id);
    if (!Number.isSafeInteger(n) || n < 1 || n >= 2 ** 31) return bad(res, 'update_id (1 .. 2^31-1) required');
    tg.updateId = n;
    cok(res, { update_id: n });
  });
  app.get('/control/updates', (req, res) => cok(res, tg.storage.userMessages.map((u) => TelegramServer.formatUpdate(u))));
  app.get('/control/messages', (req, res) => {
    const q = req.query, after = int(q.after, 0), kinds = q.kind ? String(q.kind).split(',') : null;
    const pick = () => st.events.filter((e) => e.seq > after && (q.chat_id === undefined || String(e.chat_id) === String(q.chat_id))
      && (!kinds || kinds.includes(e.kind)));
    const reply = () => cok(res, pick(), { last_seq: st.seq });
    if (pick().length || !int(q.timeout, 0)) return reply();
    const done = () => { eventWaiters.delete(waiter); clearTimeout(timer); };
    const waiter = () => { if (pick().length) { done(); reply(); } };
    const timer = setTimeout(() => { done(); reply(); }, clamp(int(q.timeout, 0), 0, MAX_POLL_S) * 1000);
    res.on('close', done);
    eventWaiters.add(waiter);
  });
  app.post('/control/faults', (req, res) => {
    const list = Array.isArray(req.body) ? req.body : [req.body || {}];
    for (const f of list) {
      if (!KINDS.has(String(f.kind))) return bad(res, `unknown fault kind ${JSON.stringify(f.kind)}; one of ${[...KINDS]}`);
      if (String(f.kind) === 'migrate' && !Number.isFinite(Number(f.to))) return bad(res, 'migrate needs "to"');
    }
    const added = list.map((f) => {
      const fault = {
        id: ++st.faultSeq, kind: String(f.kind), method: f.method, chat_id: f.chat_id === undefined ? undefined : String(f.chat_id),
        retry_after: int(f.retry_after, 1), to: f.to === undefined ? undefined : Number(f.to), after: !!f.after, ms: int(f.ms, 1000),
        description: f.description, remaining: f.count === undefined || f.count === null ? Infinity : int(f.count, 1), served: 0,
        nth: f.nth === undefined || f.nth === null ? undefined : Math.max(1, int(f.nth, 1)), seen: {},
      };
      st.faults.push(fault);
      return view(fault);
    });
    cok(res, added);
  });
  app.get('/control/faults', (req, res) => cok(res, st.faults.map(view)));
  app.delete('/control/faults', (req, res) => {
    st.faults = req.query.id ? st.faults.filter((f) => String(f.id) !== String(req.query.id)) : [];
    cok(res, true);
  });
  // The bytes of a file the bot sent (any of its file ids), as uploaded.
  app.get('/control/file', (req, res) => {
    const f = files.get(String(req.query.file_id || ''));
    if (!f) return res.status(404).json({ ok: false, error_code: 404, description: 'no such file' });
    res.set('content-type', f.mime).set('x-photo-width', String(f.width)).set('x-photo-height', String(f.height)).send(f.data);
  });
  // Forgets every file: the bot's stored file ids go stale, as when a bot's
  // files are gone or its token belongs to another bot.
  app.delete('/control/files', (req, res) => { const n = files.size; files.clear(); cok(res, n); });
  app.get('/control/stats', (req, res) => cok(res, { ...st.stats, pending_updates: tg.storage.userMessages.length, last_seq: st.seq }));
  app.delete('/control/stats', (req, res) => { st.stats = { calls: {}, ok: {}, errors: {}, faults: {}, chats: {}, uploads: {} }; cok(res, true); });
  app.get('/control/limits', (req, res) => cok(res, st.limits));
  app.post('/control/limits', (req, res) => {
    const b = req.body || {};
    for (const k of ['global_per_sec', 'chat_per_sec', 'group_per_min']) if (b[k] !== undefined) st.limits[k] = int(b[k], st.limits[k]);
    if (b.enabled !== undefined) st.limits.enabled = !!b.enabled;
    st.sends = [];
    cok(res, st.limits);
  });
}

// The route function put ahead of the package's own routes.
function compat(app, server) {
  tg = server;
  controlRoutes(app);
  app.all('/bot:token/:method', gate, (req, res, next) => {
    const h = HL.get(req.params.method.toLowerCase());
    return h ? h(req, res, next) : next(); // unknown: package routes, then our 404 below
  });
  // Bad JSON bodies (and errors in our handlers) get a Telegram-shaped answer
  // instead of the package's HTTP 500 {"message":...}.
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err.type === 'entity.parse.failed') return fail(res, 400, `Bad Request: can't parse JSON: ${err.message}`);
    log('error', req.method, req.url, err.stack || err);
    return fail(res, 500, `Internal Server Error: ${err.message}`);
  });
}
// DEVIATION D1: unknown methods get HTTP 500 {"message":"API method ... is not
// supported..."} from the package; Telegram answers 404 with this body.
function telegram404(app) {
  app.all('/bot:token/:method', (req, res) => fail(res, 404, 'Not Found: method not found'));
}

async function main() {
  routes.unshift(compat);
  const i = routes.indexOf(unknownMethod);
  if (i >= 0) routes[i] = telegram404; else routes.push(telegram404);
  // storeTimeout: the package's cleanup daemon deletes stored updates/messages
  // older than this; unconfirmed updates must survive a whole test run.
  const server = new TelegramServer({ port: PORT, host: HOST, storeTimeout: 7 * 86400 });
  for (const ev of ['AddedUserMessage', 'AddedUserCommand', 'AddedUserCallbackQuery']) server.on(ev, wakePollers); // stock client routes
  try {
    await server.start();
  } catch (e) {
    console.error(`telegram-emulator: cannot listen on ${HOST}:${PORT}: ${e.code || e.message}${e.code === 'EADDRINUSE' ? ' (port already in use)' : ''}`);
    process.exit(2);
  }
  // Outlive the clients' idle keep-alive (reqwest/hyper keep idle connections
  // 90 s); otherwise a request racing the server-side close fails at random.
  server.server.keepAliveTimeout = 120000;
  server.server.headersTimeout = 121000;
  log(`telegram-emulator listening on http://${HOST}:${PORT} (bot @${BOT_USERNAME}, limits ${st.limits.enabled ? 'on' : 'off'})`);
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
// The package's stock client routes (/sendMessage etc.) call async methods
// without awaiting them; a bad request there must not kill the emulator.
process.on('unhandledRejection', (e) => log('unhandled rejection:', e && e.message));

if (require.main === module) main();
module.exports = { main };
