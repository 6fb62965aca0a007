package dev.kcqrs.examples.clients;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

// The article's read model, as the orders projection keeps it in the store
// `orders` (examples/orders/topology.yaml) and GET /stores/orders/keys/{id} serves it.
@JsonIgnoreProperties(ignoreUnknown = true)
public class OrderReadModel {
  private final String orderId;
  private final String product;
  private final int quantity;
  private final String status;

  @JsonCreator
  public OrderReadModel(@JsonProperty("orderId") String orderId,
                        @JsonProperty("product") String product,
                        @JsonProperty("quantity") int quantity,
                        @JsonProperty("status") String status) {
    this.orderId = orderId;
    this.product = product;
    this.quantity = quantity;
    this.status = status;
  }

  public String getOrderId() {
    return orderId;
  }

  public String getProduct() {
    return product;
  }

  public int getQuantity() {
    return quantity;
  }

  public String getStatus() {
    return status;
  }

  @Override
  public String toString() {
    return "OrderReadModel{orderId=" + orderId + ", product=" + product + ", quantity="
        + quantity + ", status=" + status + "}";
  }
}
