'use strict';
// Smoke test of the emulator: `node smoke.js` starts server.js on a free port
// (or uses an already running one when TG_EMU_URL is set), checks the Bot API
// shapes teloxide needs, long polling, the control API and every fault kind,
// then prints "N passed, N failed" and exits non-zero on any failure.
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');

const TOKEN = '123456:SMOKE-TOKEN';
let BASE; let serverPid; let child;
const results = { passed: 0, failed: 0 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(method, params = {}, { token = TOKEN } = {}) {
  const r = await fetch(`${BASE}/bot${token}/${method}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params),
  });
  return { status: r.status, body: await r.json() };
}
async function ctl(verb, p, body) {
  const r = await fetch(`${BASE}/control/${p}`, {
    method: verb, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json();
  if (!j.ok) throw new Error(`control ${verb} ${p}: ${JSON.stringify(j)}`);
  return j;
}
async function timed(fn) { const t = Date.now(); const v = await fn(); return [v, Date.now() - t]; }
function assert(cond, msg) { if (!cond) throw new Error(msg); }
async function check(name, fn) {
  try {
    const note = await fn();
    results.passed += 1;
    console.log(`PASS ${name}${note ? ` — ${note}` : ''}`);
  } catch (e) {
    results.failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function cpuTicks(pid) { // utime + stime of a process, in clock ticks (1/100 s)
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}
const freePort = () => new Promise((res) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); }); });

async function start() {
  if (process.env.TG_EMU_URL) { BASE = process.env.TG_EMU_URL; serverPid = Number(process.env.TG_EMU_PID || 0); return; }
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, [path.join(__dirname, 'server.js')], { env: { ...process.env, TG_EMU_PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', () => {});
  serverPid = child.pid;
  for (let i = 0; i < 100; i += 1) {
    try { if ((await fetch(`${BASE}/control/health`)).ok) return; } catch (_) { /* not yet */ }
    await sleep(100);
  }
  throw new Error('emulator did not start');
}
async function drain() { // confirm everything pending
  const { body } = await call('getUpdates', { offset: -1, timeout: 0 });
  const last = body.result.length ? body.result[body.result.length - 1].update_id : 0;
  if (last) await call('getUpdates', { offset: last + 1, timeout: 0 });
}

async function main() {
  await start();
  await ctl('POST', 'reset');
  const me = await call('getMe');

  await check('getMe has a complete Me object', async () => {
    const r = me.body.result;
    for (const k of ['id', 'is_bot', 'first_name', 'username', 'can_join_groups', 'can_read_all_group_messages', 'supports_inline_queries', 'has_main_web_app']) assert(k in r, `missing ${k}`);
    assert(r.is_bot === true && r.username === 'factbot_test_bot' && r.id === 123456, JSON.stringify(r));
    return JSON.stringify(r);
  });

  await check('webhook/commands methods answer like Telegram; unknown method is a Telegram 404', async () => {
    const w = await call('getWebhookInfo');
    assert(w.body.ok && w.body.result.url === '' && w.body.result.pending_update_count === 0, JSON.stringify(w.body));
    assert((await call('deleteWebhook', { drop_pending_updates: false })).body.result === true, 'deleteWebhook');
    assert(JSON.stringify((await call('getMyCommands')).body.result) === '[]', 'getMyCommands empty');
    const cmds = [{ command: 'fact', description: 'ask a fact' }];
    assert((await call('setMyCommands', { commands: cmds })).body.result === true, 'setMyCommands');
    assert(JSON.stringify((await call('getMyCommands')).body.result) === JSON.stringify(cmds), 'getMyCommands');
    assert((await call('deleteMyCommands')).body.result === true, 'deleteMyCommands');
    const u = await call('sendPhotoish', {});
    assert(u.status === 404 && JSON.stringify(u.body) === '{"ok":false,"error_code":404,"description":"Not Found: method not found"}', JSON.stringify(u));
  });

  await check('getUpdates long poll holds until timeout when idle', async () => {
    const [r, ms] = await timed(() => call('getUpdates', { timeout: 1 }));
    assert(r.body.ok && r.body.result.length === 0 && ms >= 950 && ms < 1500, `${ms} ms ${JSON.stringify(r.body)}`);
    return `timeout=1 answered [] after ${ms} ms`;
  });

  let firstId;
  await check('getUpdates long poll wakes on a new update; offset semantics', async () => {
    const pending = timed(() => call('getUpdates', { timeout: 5 }));
    await sleep(300);
    await ctl('POST', 'message', { chat_id: 5001, text: 'hello' });
    const [r, ms] = await pending;
    assert(r.body.result.length === 1 && r.body.result[0].message.text === 'hello', JSON.stringify(r.body));
    assert(ms >= 280 && ms < 800, `woke after ${ms} ms`);
    firstId = r.body.result[0].update_id;
    const again = await call('getUpdates', { offset: 0, timeout: 0 });
    assert(again.body.result.length === 1 && again.body.result[0].update_id === firstId, 'unconfirmed update not redelivered');
    const conf = await call('getUpdates', { offset: firstId + 1, timeout: 0 });
    assert(conf.body.result.length === 0, 'offset did not confirm');
    for (const t of ['a', 'b', 'c']) await ctl('POST', 'message', { chat_id: 5001, text: t });
    const lim = await call('getUpdates', { offset: firstId + 1, limit: 2 });
    assert(lim.body.result.map((u) => u.message.text).join() === 'a,b', 'limit');
    const next = await call('getUpdates', { offset: lim.body.result[0].update_id + 1 });
    assert(next.body.result.map((u) => u.message.text).join() === 'b,c', 'offset mid-queue');
    const neg = await call('getUpdates', { offset: -1 });
    assert(neg.body.result.map((u) => u.message.text).join() === 'c', 'offset -1');
    const after = await call('getUpdates', { offset: 0 });
    assert(after.body.result.map((u) => u.message.text).join() === 'c', 'offset -1 forgets the earlier ones');
    await drain();
    return `woke after ${ms} ms; redelivery, offset, limit, offset=-1 ok`;
  });

  await check('two concurrent getUpdates: the older gets 409 Conflict', async () => {
    const older = call('getUpdates', { timeout: 5 });
    await sleep(100);
    const newer = call('getUpdates', { timeout: 1 });
    const o = await older;
    assert(o.status === 409 && o.body.error_code === 409, JSON.stringify(o.body));
    await newer;
  });

  await check('update ids that start over: an offset far above the new ids is ignored, as Telegram does', async () => {
    await drain();
    await ctl('POST', 'next_update_id', { update_id: 900000 });
    const up = await ctl('POST', 'message', { chat_id: 5001, text: 'up' });
    assert(up.result.update_id === 900000, JSON.stringify(up.result));
    const a = await call('getUpdates', { offset: 1, timeout: 0 }); // in range: forgets < 1 only
    assert(a.body.result.map((u) => u.update_id).join() === '900000', JSON.stringify(a.body));
    await call('getUpdates', { offset: 900001, timeout: 0 });
    await ctl('POST', 'next_update_id', { update_id: 50 });
    await ctl('POST', 'message', { chat_id: 5001, text: 'down' });
    const b = await call('getUpdates', { offset: 900001, timeout: 0 }); // in the future: ignored
    assert(b.body.result.map((u) => `${u.update_id}:${u.message.text}`).join() === '50:down', JSON.stringify(b.body));
    const c = await call('getUpdates', { offset: 51, timeout: 0 });
    assert(c.body.result.length === 0, 'offset 51 did not confirm update 50');
    return 'ids 900000 then 50 delivered';
  });

  await check('webhook: one chat at a time and in order, chats in parallel, forgotten after a 2xx', async () => {
    await drain();
    const http = require('http');
    const seen = []; let release;
    const held = new Promise((r) => { release = r; });
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', async () => {
        const u = JSON.parse(body);
        seen.push(`${u.message.chat.id}:${u.message.text}`);
        if (u.message.text === 'a1') await held; // chat 1 is slow
        res.end('ok');
      });
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${srv.address().port}/hook`;
    assert((await call('setWebhook', { url, secret_token: 's' })).body.result === true, 'setWebhook');
    try {
      for (const [chat, text] of [[1, 'a1'], [1, 'a2'], [2, 'b1'], [2, 'b2']]) await ctl('POST', 'message', { chat_id: chat, text });
      for (let i = 0; i < 50 && seen.length < 3; i += 1) await sleep(50);
      assert(seen.join() === '1:a1,2:b1,2:b2', `chat 2 must not wait for chat 1, nor a2 pass a1: ${seen}`);
      release();
      for (let i = 0; i < 50 && seen.length < 4; i += 1) await sleep(50);
      assert(seen.join() === '1:a1,2:b1,2:b2,1:a2', `${seen}`);
      for (let i = 0; i < 50 && (await call('getWebhookInfo')).body.result.pending_update_count; i += 1) await sleep(50);
      assert((await call('getWebhookInfo')).body.result.pending_update_count === 0, 'answered updates still pending');
    } finally {
      await call('deleteWebhook');
      srv.close();
    }
  });

  let groupMsg; let botMsg;
  await check('user message round trip in a supergroup (command entity, reply, date in seconds, chat type)', async () => {
    const sent = await ctl('POST', 'message', { chat_id: -1001234567890, chat_type: 'supergroup', chat_title: 'Facts', from: { id: 77, first_name: 'Ann', username: 'ann' }, text: '/fact@factbot_test_bot capital of France' });
    groupMsg = sent.result.message;
    const { body } = await call('getUpdates', { timeout: 2 });
    const m = body.result[0].message;
    assert(m.chat.type === 'supergroup' && m.chat.title === 'Facts' && m.from.id === 77 && !m.from.is_bot, JSON.stringify(m));
    assert(m.entities[0].type === 'bot_command' && m.entities[0].offset === 0 && m.entities[0].length === 22, JSON.stringify(m.entities));
    await call('getUpdates', { offset: body.result[0].update_id + 1 });
    const r = await call('sendMessage', { chat_id: m.chat.id, text: 'Paris', reply_parameters: { message_id: m.message_id } });
    botMsg = r.body.result;
    assert(Math.abs(botMsg.date - Date.now() / 1000) < 5, `date ${botMsg.date}`);
    assert(botMsg.chat.type === 'supergroup' && botMsg.from.is_bot && botMsg.reply_to_message.message_id === m.message_id, JSON.stringify(botMsg));
    const g = await call('sendMessage', { chat_id: -4242, text: 'x' });
    const p = await call('sendMessage', { chat_id: 5001, text: 'y' });
    assert(g.body.result.chat.type === 'group' && p.body.result.chat.type === 'private', 'inferred chat types');
    const msgs = await ctl('GET', `messages?chat_id=${m.chat.id}&after=0`);
    assert(msgs.result.length === 1 && msgs.result[0].kind === 'sent' && msgs.result[0].text === 'Paris', JSON.stringify(msgs));
    return `bot reply date=${botMsg.date}, chat.type=${botMsg.chat.type}`;
  });

  await check('/control/messages long poll wakes on a bot send', async () => {
    const { last_seq: seq } = await ctl('GET', 'messages?after=0');
    const wait = timed(() => ctl('GET', `messages?chat_id=5001&after=${seq}&timeout=5`));
    await sleep(200);
    await call('sendMessage', { chat_id: 5001, text: 'later' });
    const [r, ms] = await wait;
    assert(r.result.length === 1 && r.result[0].text === 'later' && ms < 700, `${ms} ms ${JSON.stringify(r)}`);
    const [idle, ims] = await timed(() => ctl('GET', `messages?chat_id=5001&after=${r.last_seq}&timeout=1`));
    assert(idle.result.length === 0 && ims >= 950, `idle wait ${ims}`);
    return `woke after ${ms} ms`;
  });

  await check('inline button: callback_query update, answerCallbackQuery, editMessageText', async () => {
    const kb = { inline_keyboard: [[{ text: 'More', callback_data: 'more:1' }, { text: 'Done', callback_data: 'done' }]] };
    const sent = (await call('sendMessage', { chat_id: 5001, text: 'Pick', reply_markup: kb })).body.result;
    assert(sent.reply_markup.inline_keyboard[0][0].callback_data === 'more:1', 'markup echoed');
    await ctl('POST', 'callback', { chat_id: 5001, message_id: sent.message_id, button: 'More' });
    const { body } = await call('getUpdates', { timeout: 2 });
    const cq = body.result[0].callback_query;
    assert(cq && cq.chat_instance && cq.data === 'more:1' && cq.message.message_id === sent.message_id && cq.message.date > 1e9 && cq.message.date < 1e10, JSON.stringify(cq));
    await call('getUpdates', { offset: body.result[0].update_id + 1 });
    const a = await call('answerCallbackQuery', { callback_query_id: cq.id, text: 'ok' });
    assert(a.body.result === true, JSON.stringify(a.body));
    const e = await call('editMessageText', { chat_id: 5001, message_id: sent.message_id, text: 'Picked more' });
    assert(e.body.result.text === 'Picked more' && e.body.result.edit_date && !e.body.result.reply_markup && e.body.result.message_id === sent.message_id, JSON.stringify(e.body));
    const same = await call('editMessageText', { chat_id: 5001, message_id: sent.message_id, text: 'Picked more' });
    assert(same.status === 400 && /message is not modified/.test(same.body.description), JSON.stringify(same.body));
    const missing = await call('editMessageText', { chat_id: 5001, message_id: 999999, text: 'x' });
    assert(missing.status === 400 && missing.body.description === 'Bad Request: message to edit not found', 'edit missing');
    const evs = await ctl('GET', 'messages?chat_id=5001&kind=edited,callback_answer');
    assert(evs.result.map((x) => x.kind).join() === 'callback_answer,edited', JSON.stringify(evs.result.map((x) => x.kind)));
    const nob = await fetch(`${BASE}/control/callback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ chat_id: 5001, message_id: sent.message_id, data: 'nope' }) });
    assert(nob.status === 400, 'pressing a non-existent button is refused');
    const d = await call('deleteMessage', { chat_id: 5001, message_id: sent.message_id });
    assert(d.body.result === true, 'deleteMessage');
  });

  await check('inline_query update and answerInlineQuery', async () => {
    await ctl('POST', 'inline_query', { query: 'paris', from: { id: 9 } });
    const { body } = await call('getUpdates', { timeout: 2 });
    const iq = body.result[0].inline_query;
    assert(iq && iq.query === 'paris' && iq.from.id === 9 && iq.offset === '', JSON.stringify(body));
    await call('getUpdates', { offset: body.result[0].update_id + 1 });
    assert((await call('answerInlineQuery', { inline_query_id: iq.id, results: [] })).body.result === true, 'answerInlineQuery');
  });

  // ---- faults ----
  await ctl('DELETE', 'stats');
  await check('fault 429 with retry_after, count 2', async () => {
    await ctl('POST', 'faults', { method: 'sendMessage', kind: '429', retry_after: 2, count: 2 });
    const codes = [];
    for (let i = 0; i < 3; i += 1) codes.push(await call('sendMessage', { chat_id: 5001, text: `r${i}` }));
    assert(codes[0].status === 429 && codes[0].body.parameters.retry_after === 2 && codes[0].body.description === 'Too Many Requests: retry after 2', JSON.stringify(codes[0].body));
    assert(codes[1].status === 429 && codes[2].status === 200, codes.map((c) => c.status).join());
    return codes.map((c) => c.status).join(',');
  });
  await check('fault 500 (any method but getUpdates), count 1', async () => {
    await ctl('POST', 'faults', { kind: '500', count: 1 });
    const u = await call('getUpdates', { timeout: 0 });
    const r1 = await call('sendMessage', { chat_id: 5001, text: 'x' });
    const r2 = await call('sendMessage', { chat_id: 5001, text: 'x' });
    assert(u.status === 200 && r1.status === 500 && r1.body.ok === false && r1.body.error_code === 500 && r2.status === 200, `${u.status} ${JSON.stringify(r1.body)} ${r2.status}`);
  });
  await check('fault drop (socket destroyed, nothing delivered), count 1', async () => {
    await ctl('POST', 'faults', { method: 'sendMessage', kind: 'drop', count: 1 });
    const before = (await ctl('GET', 'stats')).result.ok.sendMessage || 0;
    let err = null;
    try { await call('sendMessage', { chat_id: 5001, text: 'lost' }); } catch (e) { err = e; }
    assert(err, 'request should fail at the socket level');
    const after = (await ctl('GET', 'stats')).result.ok.sendMessage || 0;
    assert(after === before, 'dropped request must not be delivered');
    return `client saw: ${err.cause ? err.cause.code || err.cause.message : err.message}`;
  });
  await check('fault drop after:true (delivered, answer lost -> duplicate on retry)', async () => {
    await ctl('POST', 'faults', { method: 'sendMessage', kind: 'drop', after: true, count: 1 });
    const { last_seq: seq } = await ctl('GET', 'messages?after=0');
    let err = null;
    try { await call('sendMessage', { chat_id: 5001, text: 'dup' }); } catch (e) { err = e; }
    await call('sendMessage', { chat_id: 5001, text: 'dup' });
    const r = await ctl('GET', `messages?chat_id=5001&after=${seq}`);
    assert(err && r.result.filter((e) => e.text === 'dup').length === 2, `${err} ${JSON.stringify(r.result)}`);
  });
  await check('fault 403 persistent for one chat', async () => {
    await ctl('POST', 'faults', { kind: '403', chat_id: -100123 });
    const a = await call('sendMessage', { chat_id: -100123, text: 'x' });
    const b = await call('sendMessage', { chat_id: -100123, text: 'x' });
    const other = await call('sendMessage', { chat_id: -555, text: 'x' });
    assert(a.status === 403 && a.body.description === 'Forbidden: bot was kicked from the group chat' && b.status === 403 && other.status === 200, JSON.stringify(a.body));
    await ctl('DELETE', 'faults');
    assert((await call('sendMessage', { chat_id: -100123, text: 'x' })).status === 200, 'cleared');
  });
  await check('fault migrate (400 with parameters.migrate_to_chat_id)', async () => {
    await ctl('POST', 'faults', { kind: 'migrate', chat_id: -123, to: -100123 });
    const r = await call('sendMessage', { chat_id: -123, text: 'x' });
    assert(r.status === 400 && r.body.parameters.migrate_to_chat_id === -100123, JSON.stringify(r.body));
    const n = await call('sendMessage', { chat_id: -100123, text: 'x' });
    assert(n.status === 200 && n.body.result.chat.type === 'group', 'new chat id works');
    await ctl('DELETE', 'faults');
  });
  await check('fault delay and custom 400', async () => {
    await ctl('POST', 'faults', [{ method: 'sendMessage', kind: 'delay', ms: 600, count: 1 }, { method: 'editMessageText', kind: '400', description: 'Bad Request: message to edit not found', count: 1 }]);
    const [r, ms] = await timed(() => call('sendMessage', { chat_id: 5001, text: 'slow' }));
    assert(r.status === 200 && ms >= 580, `${ms} ms`);
    const e = await call('editMessageText', { chat_id: 5001, message_id: r.body.result.message_id, text: 'z' });
    assert(e.status === 400 && e.body.description === 'Bad Request: message to edit not found', JSON.stringify(e.body));
    return `delayed ${ms} ms`;
  });
  await check('fault on getUpdates must be named explicitly', async () => {
    await ctl('POST', 'faults', { method: 'getUpdates', kind: '500', count: 1 });
    const r = await call('getUpdates', { timeout: 0 });
    assert(r.status === 500 && r.body.ok === false, JSON.stringify(r.body));
    await ctl('DELETE', 'faults');
  });
  await check('stats count successful sends per method and chat, and faults served', async () => {
    const s = (await ctl('GET', 'stats')).result;
    assert(s.faults.sendMessage['429'] === 2 && s.faults.sendMessage['500'] === 1 && s.faults.sendMessage.drop === 2 && s.faults.sendMessage['403'] === 2, JSON.stringify(s.faults));
    assert(s.chats['5001'].sendMessage === 5 && s.chats['-100123'].sendMessage === 2, JSON.stringify(s.chats));
    return JSON.stringify({ ok: s.ok, faults: s.faults });
  });
  await check('fault nth: only the 2nd matching request of each chat', async () => {
    await ctl('POST', 'faults', { method: 'sendMessage', kind: '429', nth: 2 });
    const codes = [];
    for (const chat of [5101, 5102]) for (let i = 0; i < 3; i += 1) codes.push((await call('sendMessage', { chat_id: chat, text: `n${i}` })).status);
    assert(codes.join() === '200,429,200,200,429,200', codes.join());
    await ctl('DELETE', 'faults');
    return codes.join(',');
  });
  await check('message length: 4096 UTF-16 code units of the visible text (HTML tags free, an entity one)', async () => {
    const a = await call('sendMessage', { chat_id: 5103, text: '🎉'.repeat(2049) }); // 2049 code points, 4098 units
    const b = await call('sendMessage', { chat_id: 5103, text: `<b>${'🎉'.repeat(2048)}</b>`, parse_mode: 'HTML' });
    const c = await call('sendMessage', { chat_id: 5103, text: `<i>${'&amp;'.repeat(4096)}</i>`, parse_mode: 'HTML' });
    const d = await call('sendMessage', { chat_id: 5103, text: `<b>${'🎉'.repeat(2049)}</b>`, parse_mode: 'HTML' });
    assert(a.status === 400 && a.body.description === 'Bad Request: message is too long', JSON.stringify(a.body));
    assert(b.status === 200 && c.status === 200 && d.status === 400, `${b.status} ${c.status} ${d.status}`);
  });
  await check('sendPhoto: multipart upload (attach://), sizes, file download, reuse by file_id, stale ids, caption limit', async () => {
    // A PNG header of a 400×250 picture, built by hand: signature, IHDR, IDAT, IEND (the emulator reads only IHDR).
    const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(400, 0); ihdr.writeUInt32BE(250, 4); ihdr[8] = 8; ihdr[9] = 2;
    const chunk = (type, data) => { const b = Buffer.alloc(12 + data.length); b.writeUInt32BE(data.length, 0); b.write(type, 4, 'latin1'); data.copy(b, 8); return b; };
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0, 1, 2, 3])), chunk('IEND', Buffer.alloc(0))]);
    const form = new FormData();
    form.append('chat_id', '5201'); form.append('photo', 'attach://f1'); form.append('caption', '<b>Chart</b>'); form.append('parse_mode', 'HTML');
    form.append('reply_markup', JSON.stringify({ inline_keyboard: [[{ text: 'x', callback_data: 'y' }]] }));
    form.append('f1', new Blob([png], { type: 'image/png' }), 'chart.png');
    const r = await (await fetch(`${BASE}/bot${TOKEN}/sendPhoto`, { method: 'POST', body: form })).json();
    assert(r.ok && Array.isArray(r.result.photo), JSON.stringify(r));
    const big = r.result.photo[r.result.photo.length - 1];
    assert(big.width === 400 && big.height === 250 && r.result.photo.length === 3 && r.result.caption === '<b>Chart</b>', JSON.stringify(r.result.photo));
    assert(r.result.reply_markup.inline_keyboard[0][0].callback_data === 'y', 'keyboard echoed');
    const bytes = Buffer.from(await (await fetch(`${BASE}/control/file?file_id=${big.file_id}`)).arrayBuffer());
    assert(bytes.equals(png), 'the uploaded bytes come back');
    const again = await call('sendPhoto', { chat_id: 5202, photo: big.file_id });
    assert(again.status === 200 && again.body.result.photo[2].file_id === big.file_id, JSON.stringify(again.body));
    const ev = (await ctl('GET', 'messages?chat_id=5202&after=0')).result.pop();
    assert(ev.method === 'sendPhoto' && ev.uploaded === false && ev.photo_file_id === big.file_id, JSON.stringify(ev));
    const long = await call('sendPhoto', { chat_id: 5202, photo: big.file_id, caption: 'x'.repeat(1025) });
    assert(long.status === 400 && long.body.description === 'Bad Request: message caption is too long', JSON.stringify(long.body));
    const edit = await call('editMessageText', { chat_id: 5202, message_id: again.body.result.message_id, text: 't' });
    assert(edit.status === 400 && /no text in the message/.test(edit.body.description), JSON.stringify(edit.body));
    const junk = new FormData(); junk.append('chat_id', '5201'); junk.append('photo', new Blob([Buffer.from('not an image')]), 'x.png');
    const bad = await (await fetch(`${BASE}/bot${TOKEN}/sendPhoto`, { method: 'POST', body: junk })).json();
    assert(!bad.ok && bad.description === 'Bad Request: IMAGE_PROCESS_FAILED', JSON.stringify(bad));
    const inl = await call('answerInlineQuery', { inline_query_id: '1', results: [{ type: 'photo', id: 'a', photo_file_id: big.file_id }] });
    assert(inl.status === 200, JSON.stringify(inl.body));
    await ctl('DELETE', 'files');
    const stale = await call('sendPhoto', { chat_id: 5202, photo: big.file_id });
    assert(stale.status === 400 && stale.body.description === 'Bad Request: wrong file identifier/HTTP URL specified', JSON.stringify(stale.body));
    const staleInline = await call('answerInlineQuery', { inline_query_id: '2', results: [{ type: 'photo', id: 'a', photo_file_id: big.file_id }] });
    assert(staleInline.status === 400, JSON.stringify(staleInline.body));
    const stats = (await ctl('GET', 'stats')).result;
    assert(stats.uploads.sendPhoto === 1, JSON.stringify(stats.uploads));
  });
  await check('enforce-limits mode: 1 msg/s per chat, 20/min per group', async () => {
    await ctl('POST', 'limits', { enabled: true, group_per_min: 3 });
    const a = await call('sendMessage', { chat_id: 6001, text: '1' });
    const b = await call('sendMessage', { chat_id: 6001, text: '2' });
    const c = await call('sendMessage', { chat_id: 6002, text: '3' });
    assert(a.status === 200 && b.status === 429 && b.body.parameters.retry_after >= 1 && c.status === 200, `${a.status} ${b.status} ${c.status}`);
    for (let i = 0; i < 3; i += 1) { await call('sendMessage', { chat_id: -7001, text: `${i}` }); await sleep(1001); }
    const g = await call('sendMessage', { chat_id: -7001, text: '4th' });
    assert(g.status === 429 && g.body.parameters.retry_after > 50, JSON.stringify(g.body));
    await ctl('POST', 'limits', { enabled: false, group_per_min: 20 });
    return `per-chat retry_after=${b.body.parameters.retry_after}, group retry_after=${g.body.parameters.retry_after}`;
  });

  if (serverPid) {
    await check('a long-polling client makes a handful of requests (idle CPU reported)', async () => {
      await drain();
      const t0 = cpuTicks(serverPid); const c0 = process.cpuUsage(); const w0 = Date.now();
      let polls = 0;
      while (Date.now() - w0 < 6000) { await call('getUpdates', { timeout: 2 }); polls += 1; }
      const wall = (Date.now() - w0) / 1000;
      const server = (cpuTicks(serverPid) - t0) / 100 / wall;
      const c = process.cpuUsage(c0); const client = (c.user + c.system) / 1e6 / wall;
      // Contrast: what a client gets when getUpdates returns at once (the stock package).
      const s0 = cpuTicks(serverPid); const w1 = Date.now(); let spins = 0;
      while (Date.now() - w1 < 2000) { await call('getUpdates', { timeout: 0 }); spins += 1; }
      const spin = (cpuTicks(serverPid) - s0) / 100 / ((Date.now() - w1) / 1000);
      // Long polling means a handful of requests, not a busy loop; CPU is reported, not asserted.
      assert(polls <= 4, `${polls} polls in 6 s: getUpdates did not hold the request open`);
      return `long poll: ${polls} requests in ${wall.toFixed(1)} s, emulator ${(server * 100).toFixed(2)}% / poller ${(client * 100).toFixed(2)}% of a core; `
        + `timeout=0 busy loop for contrast: ${spins} requests in 2 s, emulator ${(spin * 100).toFixed(0)}% of a core`;
    });
  }

  console.log(`${results.passed} passed, ${results.failed} failed`);
  if (child) child.kill('SIGTERM');
  process.exit(results.failed ? 1 : 0);
}

main().catch((e) => { console.log(`FAIL smoke crashed: ${e.stack}`); console.log(`${results.passed} passed, ${results.failed + 1} failed`); if (child) child.kill('SIGTERM'); process.exit(1); });
