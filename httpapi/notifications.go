package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"slipway.dev/slipway"
)

// notificationRoutes adds the notification routes when the config has them.
func (s *Server) notificationRoutes() {
	if s.cfg.Notifications == nil {
		return
	}
	s.mux.HandleFunc("GET /api/v1/notifications", s.allow(slipway.PermRead, s.notifications))
	s.mux.HandleFunc("GET /api/v1/notifications/{name}/deliveries", s.allow(slipway.PermRead, s.deliveries))
}

func (s *Server) notifications(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Notifications.Notifications(r.Context())
	s.reply(w, r, nonNil(v), err)
}

func (s *Server) deliveries(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.cfg.Notifications.Deliveries(r.Context(), r.PathValue("name"), int(limit))
	s.reply(w, r, nonNil(v), err)
}

// Notifications lists the notifications (GET /api/v1/notifications).
func (c *Client) Notifications(ctx context.Context) ([]slipway.Notification, error) {
	var v []slipway.Notification
	return v, c.get(ctx, "/api/v1/notifications", &v)
}

// Deliveries lists a notification's delivery log, newest first (GET
// /api/v1/notifications/{name}/deliveries).
func (c *Client) Deliveries(ctx context.Context, name string, limit int) ([]slipway.NotificationDelivery, error) {
	var v []slipway.NotificationDelivery
	path := "/api/v1/notifications/" + url.PathEscape(name) + "/deliveries"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	return v, c.get(ctx, path, &v)
}

var _ slipway.NotificationReader = (*Client)(nil)
