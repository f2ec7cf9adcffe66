package web

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/csvcell"
	"github.com/cairn-dev/cairn/views"
)

// showAudit renders a page of the workspace's audit log. The log is kept on every
// plan and shown on plans with teams.
func (h *Handler) showAudit(c echo.Context) error {
	ctx := c.Request().Context()
	ws := currentWorkspace(c)
	a := views.AuditPage{Shown: h.Config.Plans.Get(ws.Plan).Team, UpgradePlan: h.teamPlanName()}
	if !a.Shown {
		return render(c, http.StatusOK, views.AuditLogPage(h.shell(c, "Audit log", "audit"), a))
	}
	qp := auditQuery(c)
	a.Actor, a.Action, a.From, a.To = qp.Actor, qp.Action, qp.From, qp.To
	for _, x := range audit.Actions {
		a.Actions = append(a.Actions, string(x))
	}
	a.Actors = []string{"stripe", "system", "device"}
	if members, err := h.Team.Members(ctx, ws.ID); err == nil {
		for _, m := range members {
			a.Actors = append(a.Actors, m.Email)
		}
	}
	status := http.StatusOK
	f, err := h.AuditLog.ParseFilter(ctx, ws.ID, qp)
	if e := apperr.As(err); e != nil {
		a.Error, a.ErrorField, status = e.Message, e.Field, e.Code.Status()
	} else if err != nil {
		return err
	} else {
		rows, err := h.AuditLog.Page(ctx, f, audit.PageSize+1)
		if err != nil {
			return err
		}
		if len(rows) > audit.PageSize {
			rows = rows[:audit.PageSize]
			older := qp
			older.Before = strconv.FormatInt(rows[len(rows)-1].ID, 10)
			a.Older = auditURL("/dashboard/audit", older)
		}
		for _, r := range rows {
			a.Rows = append(a.Rows, views.AuditRow{
				At: r.At.UTC().Format("2006-01-02 15:04:05 UTC"), Actor: r.Actor(), Action: string(r.Action),
				Target: targetText(r), Detail: detailText(r.Detail), IP: r.IP, UserAgent: r.UserAgent,
			})
		}
	}
	first := qp
	first.Before = ""
	if qp.Before != "" {
		a.Newest = auditURL("/dashboard/audit", first)
	}
	a.Export = auditURL("/dashboard/audit.csv", first)
	return render(c, status, views.AuditLogPage(h.shell(c, "Audit log", "audit"), a))
}

// exportAudit sends every entry matching the filters as CSV, newest first,
// streamed a thousand at a time.
func (h *Handler) exportAudit(c echo.Context) error {
	ctx := c.Request().Context()
	ws := currentWorkspace(c)
	if !h.Config.Plans.Get(ws.Plan).Team {
		return apperr.New(apperr.Forbidden, "The audit log is part of the %s plan; it is kept meanwhile. Upgrade on the Billing page to export it.", h.teamPlanName())
	}
	qp := auditQuery(c)
	qp.Before = ""
	f, err := h.AuditLog.ParseFilter(ctx, ws.ID, qp)
	if err != nil {
		return err
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	hd.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="cairn-audit-%s.csv"`, time.Now().UTC().Format("2006-01-02")))
	hd.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	_ = w.Write([]string{"time", "actor", "actor_kind", "actor_id", "action", "target_kind", "target_id", "target", "detail", "ip", "user_agent"})
	err = h.AuditLog.Each(ctx, f, func(r audit.Row) error {
		actorID := ""
		if r.ActorID != nil {
			actorID = r.ActorID.String()
		}
		detail, _ := json.Marshal(r.Detail)
		if r.Detail == nil {
			detail = []byte("{}")
		}
		return w.Write([]string{
			r.At.UTC().Format(time.RFC3339), csvcell.Safe(r.Actor()), string(r.ActorKind), actorID, string(r.Action),
			r.TargetKind, csvcell.Safe(r.TargetID), csvcell.Safe(targetText(r)), csvcell.Safe(string(detail)),
			csvcell.Safe(r.IP), csvcell.Safe(r.UserAgent),
		})
	})
	w.Flush()
	if err == nil {
		err = w.Error()
	}
	if err != nil {
		// The status is sent; a broken export ends short and the log says why.
		h.Log.Error("audit export failed midway", "workspace", ws.ID, "err", err)
	}
	return nil
}

// auditQuery reads the log page's query parameters.
func auditQuery(c echo.Context) audit.Query {
	return audit.Query{
		Actor: c.QueryParam("actor"), Action: c.QueryParam("action"),
		From: c.QueryParam("from"), To: c.QueryParam("to"), Before: c.QueryParam("before"),
	}
}

// auditURL is path with the filters of q as its query.
func auditURL(path string, q audit.Query) string {
	v := url.Values{}
	for k, x := range map[string]string{"actor": q.Actor, "action": q.Action, "from": q.From, "to": q.To, "before": q.Before} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return path + "?" + v.Encode()
}

// teamPlanName names the plan that has teams and the audit log.
func (h *Handler) teamPlanName() string {
	for _, p := range h.Config.Plans {
		if p.Team {
			return p.Name
		}
	}
	return ""
}

// targetText names an entry's target for people: an email or key when known,
// else its kind and id.
func targetText(r audit.Row) string {
	switch {
	case r.Target != "":
		return r.Target
	case r.TargetKind == "workspace":
		return "this workspace"
	case r.TargetKind == "":
		return ""
	case r.TargetKind == "user":
		return "deleted account " + short(r.TargetID)
	}
	return r.TargetKind + " " + short(r.TargetID)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// detailText renders an entry's detail as "key: value" pairs in key order.
func detailText(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %v", strings.ReplaceAll(k, "_", " "), d[k])
	}
	return strings.Join(parts, ", ")
}
