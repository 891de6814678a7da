package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// Schedules lists the deployed schedules (GET /v1/schedules).
func (c *Client) Schedules(ctx context.Context) (json.RawMessage, error) {
	body, _, err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, nil, http.StatusOK)
	return body, err
}

// Schedule returns one schedule with its next runs (GET /v1/schedules/{id}).
func (c *Client) Schedule(ctx context.Context, id string) (json.RawMessage, error) {
	body, _, err := c.do(ctx, http.MethodGet, "/v1/schedules/"+url.PathEscape(id), nil, nil, http.StatusOK)
	return body, err
}

// ScheduleAction posts pause, resume or trigger to a schedule and returns
// the answer.
func (c *Client) ScheduleAction(ctx context.Context, id, action string) (json.RawMessage, error) {
	body, _, err := c.do(ctx, http.MethodPost, "/v1/schedules/"+url.PathEscape(id)+"/"+action, nil, nil, http.StatusAccepted)
	return body, err
}
