package outbox_test

import (
	"fmt"
	"time"

	"github.com/weir-broker/weir/outbox"
)

// Example routes a row the way Debezium's Outbox Event Router does, with
// options named as in a Debezium connector configuration.
func Example() {
	r, err := outbox.ParseOptions(map[string]string{
		"transforms.outbox.table.fields.additional.placement": "type:header:eventType",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := r.Route(&outbox.Row{
		ID: "5b8c6f5e-8f1e-4b63-9a55-0c1c7d0e2a11", AggregateType: "order", AggregateID: "1",
		Type: "OrderCreated", Payload: []byte(`{"total":42}`), Timestamp: time.Unix(0, 0),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("topic:", rec.Topic)
	fmt.Println("key:", string(rec.Key))
	for _, h := range rec.Headers {
		fmt.Printf("header %s: %s\n", h.Key, h.Value)
	}
	fmt.Println("value:", string(rec.Value))
	// Output:
	// topic: outbox.event.order
	// key: 1
	// header id: 5b8c6f5e-8f1e-4b63-9a55-0c1c7d0e2a11
	// header eventType: OrderCreated
	// value: {"total":42}
}
