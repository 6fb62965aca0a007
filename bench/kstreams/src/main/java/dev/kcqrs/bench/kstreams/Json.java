package dev.kcqrs.bench.kstreams;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/** JSON helpers shared by the processors, and the count of skipped (malformed) records. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private static final AtomicLong SKIPPED = new AtomicLong();
  private static final AtomicBoolean LOGGED = new AtomicBoolean();

  private Json() {}

  /** The value parsed as a JSON object, or null (after {@link #skip}) when it is not one. */
  static ObjectNode parseObject(String value, String what) {
    if (value == null) {
      skip(what + " has no value (null)", null);
      return null;
    }
    try {
      JsonNode node = MAPPER.readTree(value);
      if (node instanceof ObjectNode o) return o;
      skip(what + " is not a JSON object", value);
    } catch (JsonProcessingException e) {
      skip(what + " is not valid JSON (" + e.getOriginalMessage() + ")", value);
    }
    return null;
  }

  static String write(JsonNode node) {
    try {
      return MAPPER.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize " + node, e); // cannot happen for trees
    }
  }

  /** A text field, or null when absent or not a string. */
  static String text(JsonNode o, String field) {
    JsonNode n = o.get(field);
    return n != null && n.isTextual() ? n.asText() : null;
  }

  /** An integral number field, or null when absent or not an integer. */
  static Long integer(JsonNode o, String field) {
    JsonNode n = o.get(field);
    return n != null && n.canConvertToExactIntegral() ? n.asLong() : null;
  }

  /** Counts a skipped input record; the first one is logged (to stderr), later ones only counted. */
  static void skip(String why, String value) {
    long n = SKIPPED.incrementAndGet();
    if (LOGGED.compareAndSet(false, true)) {
      String shown = value == null ? "null" : value.length() > 200 ? value.substring(0, 200) + "…" : value;
      System.err.println("KSKIP first skipped record (" + why + "): " + shown
          + " — further skipped records are only counted");
      System.err.flush();
    }
    if (n % 100_000 == 0) System.err.println("KSKIP " + n + " records skipped so far");
  }

  static long skipped() {
    return SKIPPED.get();
  }
}
