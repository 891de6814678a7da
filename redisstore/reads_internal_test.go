package redisstore

import (
	"context"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestStreamIndex: found wherever it is, whatever the start; -1 when
// absent.
func TestStreamIndex(t *testing.T) {
	streams := []string{"a", "b", "c", "d"}
	for from := range streams {
		for want, name := range streams {
			if got := streamIndex(streams, name, from); got != want {
				t.Errorf("streamIndex(%q, from %d) = %d, want %d", name, from, got, want)
			}
		}
		if got := streamIndex(streams, "e", from); got != -1 {
			t.Errorf("streamIndex(e, from %d) = %d, want -1", from, got)
		}
	}
	if got := streamIndex(nil, "a", 0); got != -1 {
		t.Errorf("streamIndex(nil) = %d", got)
	}
}

// TestHMGetIsGoRedis: hmget sends what go-redis's HMGet does.
func TestHMGetIsGoRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	ctx := context.Background()
	for _, c := range []struct {
		fields []string
		args   []any
	}{{statusFields, statusArgs}, {stateFieldNames, stateArgs}} {
		want := client.Pipeline().HMGet(ctx, "cairn:{3}:inst:x", c.fields...).Args()
		if got := hmget(ctx, "cairn:{3}:inst:x", c.args).Args(); !reflect.DeepEqual(got, want) {
			t.Errorf("hmget sends %q, HMGet %q", got, want)
		}
	}
}
