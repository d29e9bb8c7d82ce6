package streamhouse.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Java consumer-group driver: subscribe() to TOPIC in GROUP (classic protocol), read COUNT records,
 * commitSync(), then check committed() equals the end of every assigned partition.
 *
 * usage: GroupConsume BOOTSTRAP TOPIC GROUP COUNT
 * Prints "RESULT key=value" lines (consumed, distinct, committed) and exits 1 on any mismatch.
 */
public final class GroupConsume {
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: GroupConsume BOOTSTRAP TOPIC GROUP COUNT");
            System.exit(2);
        }
        String topic = args[1];
        int count = Integer.parseInt(args[3]);
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, args[2]);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        List<String> problems = new ArrayList<>();
        int consumed = 0;
        Set<String> distinct = new HashSet<>();
        Map<TopicPartition, Long> next = new HashMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(Collections.singletonList(topic));
            long deadline = System.currentTimeMillis() + 60_000;
            while (consumed < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    consumed++;
                    distinct.add(r.partition() + "/" + r.offset());
                    next.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
                }
            }
            consumer.commitSync(Duration.ofSeconds(30));
            Map<TopicPartition, OffsetAndMetadata> committed =
                    consumer.committed(consumer.assignment(), Duration.ofSeconds(30));
            Map<Integer, Long> shown = new HashMap<>();
            for (Map.Entry<TopicPartition, Long> e : next.entrySet()) {
                OffsetAndMetadata om = committed.get(e.getKey());
                shown.put(e.getKey().partition(), om == null ? null : om.offset());
                if (om == null || om.offset() != e.getValue()) {
                    problems.add("partition " + e.getKey().partition() + ": committed " + om
                            + ", expected " + e.getValue());
                }
            }
            System.out.println("RESULT committed=" + shown);
        }
        System.out.println("RESULT consumed=" + consumed + " distinct=" + distinct.size());
        if (consumed != count || distinct.size() != count) {
            problems.add("consumed " + consumed + " (" + distinct.size() + " distinct), expected " + count);
        }
        for (String p : problems) {
            System.out.println("PROBLEM " + p);
        }
        System.out.println(problems.isEmpty() ? "RESULT ok" : "RESULT failed problems=" + problems.size());
        System.exit(problems.isEmpty() ? 0 : 1);
    }
}
