package dev.kcqrs.bench.kstreams;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Workload 1 (bench/WORKLOADS.md): keep records with kind != "view" and amount >= 100,
 * reshape them to {id, user, kind, cents: amount * 100, country}, same key, same timestamp.
 */
final class Stateless {
  private Stateless() {}

  static Topology build(String input, String output) {
    Serde<String> s = Serdes.String();
    StreamsBuilder b = new StreamsBuilder();
    b.stream(input, Consumed.with(s, s).withName("stateless-source"))
        // Parse once; a malformed value becomes null and is dropped (counted) by the filter.
        .mapValues(v -> (JsonNode) Json.parseObject(v, "the stateless input record"),
            Named.as("parse"))
        .filter((k, v) -> v != null
                && !"view".equals(Json.text(v, "kind"))
                && v.path("amount").isNumber()
                && v.get("amount").asDouble() >= 100,
            Named.as("keep"))
        .mapValues(Stateless::reshape, Named.as("reshape"))
        .to(output, Produced.with(s, s).withName("stateless-sink"));
    return b.build();
  }

  private static String reshape(JsonNode v) {
    ObjectNode out = Json.MAPPER.createObjectNode();
    out.set("id", v.get("id"));
    out.set("user", v.get("user"));
    out.set("kind", v.get("kind"));
    JsonNode amount = v.get("amount");
    if (amount.canConvertToExactIntegral()) {
      out.put("cents", amount.asLong() * 100);
    } else {
      out.put("cents", amount.decimalValue().multiply(java.math.BigDecimal.valueOf(100)));
    }
    out.set("country", v.get("country"));
    return Json.write(out);
  }
}
