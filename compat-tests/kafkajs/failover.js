// kafkajs 2.2.4 driver for the multi-agent failover test (test_cluster_clients.py).
//
// usage: node failover.js BOOTSTRAP(,BOOTSTRAP...) TOPIC COUNT RATE PARTITIONS GROUP
// The topic must exist. An idempotent producer (acks=-1, one request in flight) sends COUNT values
// "kjs-I" at about RATE per second, in sends of 10 messages to ONE partition each (partition
// (I / 10) % PARTITIONS), while
// a group consumer (kafkajs has no other kind) subscribed from the beginning reads at the same time.
// Prints "STARTED" once the first send is acknowledged (the test then kills a leader), and at the end
// one JSON line: {"sent", "acked", "sendErrors", "consumed", "duplicates", "missing", "maxSendMs",
// "crashes", "errors"}. Logs go to stderr.
//
// Why one partition per send(): kafkajs 2.2.4 loses messages when a send() spans partitions led by
// several brokers and one of them dies: sendMessages.js keeps the per-broker answers across retries,
// and when the dead broker's partitions move to a broker that already answered, the retry skips them
// and send() resolves successfully without them (kafkajs issue #1303, PR #1798). Reproduced here against
// StreamHouse: 3 of 2,400 acknowledged values missing, their sequence numbers reused by later batches.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, countArg, rateArg, partitionsArg, groupId] = process.argv.slice(2);
  const count = parseInt(countArg, 10);
  const rate = parseFloat(rateArg);
  const partitions = parseInt(partitionsArg, 10);
  const errors = [];
  const kafka = new Kafka({
    clientId: 'compat-kafkajs-failover',
    brokers: bootstrap.split(','),
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 2000 },
    logLevel: logLevel[process.env.KAFKAJS_LOG_LEVEL || 'WARN'],
    logCreator: () => ({ namespace, label, log }) => {
      const { message, ...extra } = log;
      console.error(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}`);
    },
  });

  // ---- consumer ---------------------------------------------------------------------------------
  const consumed = new Map();
  let duplicates = 0;
  let crashes = 0;
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
  consumer.on(consumer.events.CRASH, (e) => {
    crashes += 1;
    errors.push(`consumer crash: ${e.payload.error && e.payload.error.message} restart=${e.payload.restart}`);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const v = message.value.toString();
      if (consumed.has(v)) duplicates += 1;
      else consumed.set(v, `${partition}/${message.offset}`);
    },
  });

  // ---- producer ---------------------------------------------------------------------------------
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const acked = new Set();
  let sendErrors = 0;
  let maxSendMs = 0;
  let started = false;
  const t0 = Date.now();
  for (let i = 0; i < count; i += 10) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const messages = [];
    const partition = (i / 10) % partitions;
    for (let j = i; j < Math.min(count, i + 10); j++) {
      messages.push({ value: `kjs-${j}`, partition });
    }
    const s = Date.now();
    try {
      await producer.send({ topic, acks: -1, timeout: 15000, messages });
      for (const m of messages) acked.add(m.value);
      if (!started) {
        started = true;
        process.stdout.write('STARTED\n');
      }
    } catch (e) {
      sendErrors += 1;
      errors.push(`send ${i}: ${e.name}: ${e.message}`);
    }
    maxSendMs = Math.max(maxSendMs, Date.now() - s);
  }
  await producer.disconnect();

  const deadline = Date.now() + 60000;
  const allSeen = () => [...acked].every((v) => consumed.has(v));
  while (!allSeen() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  // a consumer stuck in a rebalance may not leave promptly: do not let that hang the driver
  await Promise.race([consumer.disconnect(), new Promise((r) => setTimeout(r, 10000))]);
  const missing = [...acked].filter((v) => !consumed.has(v));
  process.stdout.write(JSON.stringify({
    sent: count, acked: acked.size, sendErrors, consumed: consumed.size, duplicates,
    missing: missing.length, missingSample: missing.slice(0, 5), maxSendMs, crashes,
    errors: errors.slice(0, 10),
  }) + '\n', () => process.exit(0));
}

main().catch((e) => {
  console.error(e);
  process.stdout.write(JSON.stringify({ fatal: `${e.name}: ${e.message}` }) + '\n');
  process.exit(1);
});
