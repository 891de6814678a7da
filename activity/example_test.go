package activity_test

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cairnhq/cairn/activity"
)

func ExampleRegistry() {
	reg := activity.NewRegistry()
	// A typed handler: the input JSON is decoded into the argument.
	reg.Register("CalculateDiscount", activity.Func(func(ctx context.Context, user string) (int, error) {
		return 10 + utf8.RuneCountInString(user)%3*5, nil
	}))
	// An untyped one sees the whole task.
	reg.Register("Charge", func(ctx context.Context, t activity.Task) (any, error) {
		var in struct {
			Card   string  `json:"card"`
			Amount float64 `json:"amount"`
		}
		if err := t.Decode(&in); err != nil {
			return nil, activity.NonRetryable(err) // retrying will not fix the input
		}
		if in.Amount <= 0 {
			return nil, &activity.Error{Type: "InvalidAmount", Message: "amount must be positive", NonRetryable: true}
		}
		// t.InstanceID + t.ID is stable across redeliveries of this attempt:
		// a good idempotency key for the payment provider.
		return map[string]any{"charged": in.Amount, "key": t.InstanceID + "/" + t.ID}, nil
	})
	fmt.Println(reg.Names(), reg.Has("Charge"), reg.Has("Ship"))
	// Output: [CalculateDiscount Charge] true false
}

func ExampleNonRetryable() {
	err := activity.NonRetryable(errors.New("card declined"))
	fmt.Println(activity.IsRetryable(err), err)
	// Output: false ActivityFailed: card declined
}
