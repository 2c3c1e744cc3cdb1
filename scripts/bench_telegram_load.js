#!/usr/bin/env node
// Load driver for scripts/bench-telegram.sh: questions from simulated private
// chats injected into the Telegram emulator (tests/telegram-emulator), one
// reply awaited per question. Only Node built-ins (global fetch).
//
//   EMU_URL=http://127.0.0.1:9000 node scripts/bench_telegram_load.js
//
// Environment (defaults in brackets):
//   EMU_URL       the emulator's base URL (required)
//   QUESTIONS     questions in all [1000]
//   USERS         simulated users = private chats, ids 1..USERS [100]
//   CONCURRENCY   questions in flight at once, each in a different chat [32]
//   WARMUP        unmeasured questions first, in chats 1000001.. [5]
//   TIMEOUT_S     longest wait for one reply [60]
//   DEADLINE_S    longest whole run [900]
//   SETTLE_MS     quiet time after the last reply, to catch late extras [1000]
//   SYNC          1 = handshake on stdin/stdout around the measured part (below)
//
// Each user asks its questions one after another (the next once the reply to
// the previous one has arrived); CONCURRENCY users ask at once, so the
// emulator (one Node thread) is not flooded and the latency is the bot's,
// not a queue's. Latency: from just before the injecting POST
// /control/message to the emulator's timestamp (`at`, ms) of the bot's
// `sent` event in that chat, matched by chat and order. At the end every
// chat must have exactly as many successful sendMessage calls
// (/control/stats) as questions, no update may stay unconfirmed, and no
// unexpected `sent` event may have arrived; otherwise the exit status is 1.
//
// stdout: one JSON line with the results (with SYNC=1: `READY`, `LOADED`,
// each answered by a line on stdin, then `RESULT <json>`); stderr: a human
// summary.

'use strict';

const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : process.env[k]);
const int = (k, d) => {
  const v = Number(env(k, d));
  if (!Number.isInteger(v) || v < 0) fail(`${k} must be a non-negative integer, not ${process.env[k]}`);
  return v;
};
function fail(msg) {
  process.stderr.write(`bench_telegram_load: ${msg}\n`);
  process.exit(2);
}

const EMU = String(env('EMU_URL', '')).replace(/\/+$/, '');
if (!EMU) fail('EMU_URL is not set');
const TOTAL = int('QUESTIONS', 1000);
const USERS = int('USERS', 100);
const CONCURRENCY = Math.max(1, Math.min(int('CONCURRENCY', 32), USERS));
const WARMUP = int('WARMUP', 5);
const TIMEOUT_MS = int('TIMEOUT_S', 60) * 1000;
const DEADLINE_MS = int('DEADLINE_S', 900) * 1000;
const SETTLE_MS = int('SETTLE_MS', 1000);
const WARMUP_CHAT0 = 1000001;
const SYNC = env('SYNC', '') === '1';
if (USERS < 1) fail('USERS must be at least 1');

// A fixed mix: commands, English and Russian questions, a miss.
const MIX = [
  '/trade',
  'How much was trade in 2011?',
  'Когда создан Таможенный союз?',
  '/milestones',
  'What does Belarus export to Kazakhstan?',
  'Какой товарооборот в 2012 году?',
  '/people',
  'When was the Customs Union created?',
  'Что экспортирует Казахстан?',
  '/visit',
  'Who visited Kazakhstan?',
  'Сколько лет дипломатическим отношениям?',
  '/search customs union',
  'Tell me about joint plants',
  '/exports',
  'Кто возглавлял делегацию?',
  '/investment',
  'What was agreed during the visit?',
  '/help',
  'What is the weather like on Mars?',
];

// Questions per user: TOTAL spread over USERS, the first ones get one more.
const plan = [];
for (let u = 1; u <= USERS; u++) {
  const n = Math.floor(TOTAL / USERS) + (u <= TOTAL % USERS ? 1 : 0);
  const qs = [];
  for (let k = 0; k < n; k++) qs.push(MIX[(u * 7 + k) % MIX.length]);
  if (n) plan.push({ chat: u, lang: u % 2 ? 'en' : 'ru', qs });
}

const t0run = Date.now();
const deadline = t0run + DEADLINE_MS;

async function http(method, path, body) {
  const res = await fetch(EMU + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60000),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok || !json.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json).slice(0, 200)}`);
  return json;
}

// ---- the event pump: one long poll for every chat ----
const waiting = new Map(); // chat id -> { resolve, timer }
const strays = []; // sent events nobody waited for (duplicates, late replies)
let lastSeq = 0;
let pumping = true;

async function pump() {
  while (pumping) {
    let r;
    try {
      r = await http('GET', `/control/messages?after=${lastSeq}&timeout=2&kind=sent`);
    } catch (e) {
      if (!pumping) return;
      process.stderr.write(`bench_telegram_load: event poll failed: ${e.message}\n`);
      await new Promise((ok) => setTimeout(ok, 200));
      continue;
    }
    for (const ev of r.result) {
      lastSeq = Math.max(lastSeq, ev.seq);
      const w = waiting.get(Number(ev.chat_id));
      if (w) {
        waiting.delete(Number(ev.chat_id));
        clearTimeout(w.timer);
        w.resolve(ev);
      } else {
        strays.push({ seq: ev.seq, chat_id: ev.chat_id, text: String(ev.text || '').slice(0, 60) });
      }
    }
  }
}

// Asks one question in `chat`; resolves with the latency in ms.
async function ask(chat, lang, text) {
  if (waiting.has(chat)) throw new Error(`chat ${chat} already has a question in flight`);
  const reply = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(chat);
      reject(new Error(`no reply in chat ${chat} within ${TIMEOUT_MS / 1000} s to ${JSON.stringify(text)}`));
    }, Math.max(1, Math.min(TIMEOUT_MS, deadline - Date.now())));
    waiting.set(chat, { resolve, timer });
  });
  reply.catch(() => {}); // handled by the await below
  const sentAt = Date.now();
  await http('POST', '/control/message', {
    chat_id: chat,
    text,
    from: { id: chat, is_bot: false, first_name: `User${chat}`, language_code: lang },
  });
  const ev = await reply;
  return { latency: ev.at - sentAt, at: ev.at };
}

// With SYNC=1: prints `tag` on stdout and waits (at most 60 s) for a line on
// stdin, so the caller can read /proc exactly between warm-up and load and
// right after the last reply.
const stdinLines = [];
let stdinWaiter = null;
if (SYNC) {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      stdinLines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (stdinWaiter) stdinWaiter();
    }
  });
}
async function handshake(tag) {
  if (!SYNC) return;
  process.stdout.write(`${tag}\n`);
  const t = Date.now() + 60000;
  while (!stdinLines.length) {
    if (Date.now() > t) throw new Error(`no answer on stdin to ${tag} within 60 s`);
    await new Promise((ok) => {
      stdinWaiter = ok;
      setTimeout(ok, 1000);
    });
    stdinWaiter = null;
  }
  stdinLines.shift();
}

const pct = (sorted, q) => {
  if (!sorted.length) return null;
  const r = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[r - 1];
};

async function main() {
  const health = await http('GET', '/control/health');
  const before = (await http('GET', '/control/stats')).result;
  lastSeq = before.last_seq;
  const pumpDone = pump();

  // Warm-up: unmeasured, one at a time, in chats outside the measured ones.
  for (let i = 0; i < WARMUP; i++) {
    await ask(WARMUP_CHAT0 + i, 'en', MIX[i % MIX.length]);
  }
  const statsWarm = (await http('GET', '/control/stats')).result;
  await handshake('READY'); // the caller snapshots the bot's CPU time now
  const latencies = [];
  const errors = [];
  const queue = plan.map((p) => ({ ...p, next: 0 }));
  let firstSend = null;
  let lastReply = 0;
  const worker = async () => {
    while (queue.length && !errors.length) {
      const u = queue.shift();
      const text = u.qs[u.next++];
      try {
        if (firstSend === null) firstSend = Date.now();
        const { latency, at } = await ask(u.chat, u.lang, text);
        latencies.push(latency);
        lastReply = Math.max(lastReply, at);
      } catch (e) {
        errors.push(e.message);
        return;
      }
      if (u.next < u.qs.length) queue.push(u);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await handshake('LOADED'); // ... and again now
  // Wall time: first injection to the last reply (emulator timestamps).
  const wallMs = Math.max(1, (lastReply || Date.now()) - (firstSend || Date.now()));

  // Quiet time: extras (duplicates) would show up now.
  await new Promise((ok) => setTimeout(ok, SETTLE_MS));
  let after = (await http('GET', '/control/stats')).result;
  const confirmDeadline = Date.now() + 10000;
  while (after.pending_updates !== 0 && Date.now() < confirmDeadline) {
    await new Promise((ok) => setTimeout(ok, 50));
    after = (await http('GET', '/control/stats')).result;
  }
  pumping = false;
  await Promise.race([pumpDone, new Promise((ok) => setTimeout(ok, 3000))]);

  // Every question exactly one reply, per chat, as the emulator counted.
  // (teloxide names methods in PascalCase; the emulator counts them as called.)
  const sends = (s, chat) =>
    Object.entries((s.chats || {})[String(chat)] || {})
      .filter(([m]) => m.toLowerCase() === 'sendmessage')
      .reduce((a, [, n]) => a + Number(n), 0);
  const wrong = [];
  for (const p of plan) {
    const got = sends(after, p.chat) - sends(before, p.chat);
    if (got !== p.qs.length) wrong.push(`chat ${p.chat}: ${got} replies to ${p.qs.length} questions`);
  }
  for (let i = 0; i < WARMUP; i++) {
    const got = sends(after, WARMUP_CHAT0 + i) - sends(before, WARMUP_CHAT0 + i);
    if (got !== 1) wrong.push(`warm-up chat ${WARMUP_CHAT0 + i}: ${got} replies to 1 question`);
  }
  const count = (s, k, m) =>
    Object.entries(s[k] || {})
      .filter(([name]) => name.toLowerCase() === m.toLowerCase())
      .reduce((a, [, n]) => a + Number(n), 0);
  const delta = (k, m) => count(after, k, m) - count(statsWarm, k, m);
  latencies.sort((a, b) => a - b);
  const replies = latencies.length;
  const out = {
    emulator: EMU,
    bot_username: health.result.bot_username,
    questions: TOTAL,
    users: plan.length,
    concurrency: CONCURRENCY,
    replies,
    wall_s: wallMs / 1000,
    replies_per_s: replies / (wallMs / 1000),
    p50_ms: pct(latencies, 50),
    p90_ms: pct(latencies, 90),
    p99_ms: pct(latencies, 99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    mean_ms: replies ? latencies.reduce((a, b) => a + b, 0) / replies : null,
    calls: {
      getUpdates: delta('calls', 'getUpdates'),
      sendMessage: delta('calls', 'sendMessage'),
      errors: Object.values(after.errors || {}).reduce((a, b) => a + b, 0)
        - Object.values(statsWarm.errors || {}).reduce((a, b) => a + b, 0),
    },
    pending_updates: after.pending_updates,
    strays: strays.length,
    problems: [...errors, ...wrong],
  };
  if (after.pending_updates !== 0) out.problems.push(`${after.pending_updates} updates still unconfirmed`);
  if (strays.length) out.problems.push(`${strays.length} unexpected sent events, e.g. ${JSON.stringify(strays.slice(0, 3))}`);
  if (replies !== TOTAL) out.problems.push(`${replies} of ${TOTAL} questions answered`);

  process.stdout.write((SYNC ? 'RESULT ' : '') + JSON.stringify(out) + '\n');
  const f = (v, d = 1) => (v === null ? '-' : v.toFixed(d));
  process.stderr.write(
    `${replies}/${TOTAL} replies from ${plan.length} chats (concurrency ${CONCURRENCY}) in ${f(out.wall_s, 2)} s: ` +
      `${f(out.replies_per_s)} replies/s, p50 ${f(out.p50_ms, 0)} ms, p99 ${f(out.p99_ms, 0)} ms, ` +
      `getUpdates ${out.calls.getUpdates}, sendMessage ${out.calls.sendMessage}\n`,
  );
  if (out.problems.length) {
    process.stderr.write(`FAILED:\n  ${out.problems.slice(0, 20).join('\n  ')}\n`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`bench_telegram_load: ${e.stack || e}\n`);
  process.exit(1);
});
