// kafkajs 2.2.4: a two-member consumer group with kafkajs's default assigner (round robin).
//
// usage: node group_members.js BOOTSTRAP TOPIC GROUP PARTITIONS N
//
// Phase 1: consumer A joins, then B; once they split the partitions, N records are produced (kafkajs
// producer, explicit partitions); both consume, committing each record's offset + 1 with
// commitOffsets() (autoCommit off). Phase 2: B disconnects (LeaveGroup); A takes every partition;
// N more records. Phase 3: a NEW consumer B2 joins; once A and B2 split the partitions, N more
// records. Each phase ends when the group's committed offsets (admin.fetchOffsets) reach the end.
//
// Prints one JSON event per line (same format as java/.../GroupMembers.java):
//   {"ev":"assign","m","phase","parts"} {"ev":"rec","m","phase","p","o","v"} {"ev":"commit","m","p","o"}
//   {"ev":"commit_failed","m","error"} {"ev":"phase","phase","end":{p: offset}} {"ev":"done"}
// Exits 1 with a "PROBLEM ..." line when a step takes more than 30 s.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const STEP_MS = 30000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function main() {
  const [bootstrap, topic, groupId, partsArg, nArg] = process.argv.slice(2);
  if (!nArg) {
    console.error('usage: node group_members.js BOOTSTRAP TOPIC GROUP PARTITIONS N');
    process.exit(2);
  }
  const partitions = parseInt(partsArg, 10);
  const n = parseInt(nArg, 10);
  const kafka = new Kafka({
    clientId: 'compat-kafkajs-group',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 20000,
    retry: { retries: 5, initialRetryTime: 200 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ label, namespace, log }) => {
      const { message, ...extra } = log;
      console.error(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}`);
    },
  });
  let phase = 1;
  const assignment = {};

  async function start(name) {
    const c = kafka.consumer({ groupId, sessionTimeout: 6000, rebalanceTimeout: 10000,
                               heartbeatInterval: 1000, maxWaitTimeInMs: 100 });
    c.on(c.events.GROUP_JOIN, (e) => {
      const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
      assignment[name] = parts;
      out({ ev: 'assign', m: name, phase, parts });
    });
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        out({ ev: 'rec', m: name, phase, p: partition, o: Number(message.offset),
              v: message.value.toString() });
        const next = String(Number(message.offset) + 1);
        try {
          await c.commitOffsets([{ topic, partition, offset: next }]);
          out({ ev: 'commit', m: name, p: partition, o: Number(next) });
        } catch (err) {
          out({ ev: 'commit_failed', m: name, error: String(err && err.type || err) });
        }
      },
    });
    return c;
  }

  async function until(what, cond) {
    const deadline = Date.now() + STEP_MS;
    while (!(await cond())) {
      if (Date.now() > deadline) {
        console.log(`PROBLEM phase ${phase}: timed out waiting for ${what}; assignments ` +
                    JSON.stringify(assignment));
        process.exit(1);
      }
      await sleep(100);
    }
  }

  const split = (names) => {
    const all = [];
    for (const m of names) {
      if (!assignment[m] || assignment[m].length === 0) return false;
      all.push(...assignment[m]);
    }
    return all.length === partitions && new Set(all).size === partitions;
  };

  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer();
  await producer.connect();

  async function produce(tag) {
    const messages = [];
    for (let i = 0; i < n; i++) messages.push({ partition: i % partitions, value: `${tag}-${i}` });
    const res = await producer.send({ topic, acks: -1, messages });
    const end = {};
    // one RecordMetadata per partition: baseOffset of that partition's batch
    const count = {};
    for (const m of messages) count[m.partition] = (count[m.partition] || 0) + 1;
    for (const r of res) end[r.partition] = Number(r.baseOffset) + count[r.partition];
    return end;
  }

  async function committedReached(end) {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const got = {};
    for (const p of t.partitions) got[p.partition] = Number(p.offset);
    return Object.entries(end).every(([p, o]) => (got[p] || -1) >= o);
  }

  // phase 1
  const A = await start('A');
  // B joins once A holds the group
  await until('A alone to hold every partition', async () => split(['A']));
  let B = await start('B');
  await until('A and B to split the partitions', async () => split(['A', 'B']));
  let end = await produce('p1');
  out({ ev: 'phase', phase: 1, end });
  await until('phase 1 commits', () => committedReached(end));

  // phase 2: B leaves
  phase = 2;
  await B.disconnect();
  delete assignment.B;
  await until('A to take every partition', async () => split(['A']));
  end = await produce('p2');
  out({ ev: 'phase', phase: 2, end });
  await until('phase 2 commits', () => committedReached(end));

  // phase 3: a new member
  phase = 3;
  B = await start('B2');
  await until('A and B2 to split the partitions', async () => split(['A', 'B2']));
  end = await produce('p3');
  out({ ev: 'phase', phase: 3, end });
  await until('phase 3 commits', () => committedReached(end));

  phase = 4; // what happens while the members leave is not part of phase 3
  await A.disconnect();
  await B.disconnect();
  await producer.disconnect();
  await admin.disconnect();
  out({ ev: 'done' });
}

main().catch((err) => {
  console.error('kafkajs group driver failed:', err && err.stack ? err.stack : err);
  process.exit(1);
});
