package main

import (
	"context"
	"net/http/httptest"
	"testing"
)

// Each floor variant answers the calls of an instance as the httpflow
// client expects of cairn serve (start 202, raiseEvent 202, GET status
// Completed): otherwise its figures would be of failed calls.
func TestFloorAnswersLikeCairnServe(t *testing.T) {
	rs, err := startRedis("redis-server")
	if err != nil {
		t.Fatalf("floor-redis needs redis-server (apt-get install redis-server): %v", err)
	}
	defer rs.stop()
	for _, v := range floorVariants {
		t.Run(v, func(t *testing.T) {
			h, err := floorHandler(v, rs.addr)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			fc, err := newFlowClient(clientRaw, srv.URL, flowPoll, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fc.close()
			tr := newTracker("floor-", 1, targetDone)
			if err := fc.run(context.Background(), tr, 0, "floor-0"); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"start", "raiseEvent", "status"} {
				if n := fc.calls[k].Load(); n != 1 {
					t.Errorf("%s calls: %d, want 1", k, n)
				}
			}
			if tr.failed.Load() != 0 {
				t.Error("the client saw the instance end other than Completed")
			}
		})
	}
	if _, err := floorHandler("floor-none", rs.addr); err == nil {
		t.Error("an unknown variant made a handler")
	}
	if _, err := floorHandler(floorRedis, ""); err == nil {
		t.Error("floor-redis made a handler without a Redis")
	}
}
