package kf

import (
	"context"
	"errors"
)

// MenuIDHandoff is the click id of a MenuBuilder's Handoff item that hands the customer to the
// queue; an item that hands to a servicer has MenuIDHandoff + "." + the servicer's userid.
const MenuIDHandoff = "handoff"

// MenuBuilder builds a msgmenu whose click items route back to a Router: each Click registers its
// handler on the Router under the item's id when Build succeeds, so the text WeCom delivers when
// the customer clicks (Text.MenuID is the id, §4) reaches that handler. Ids must be stable across
// restarts: a customer may click a menu sent hours earlier.
//
//	menu, err := rt.Menu("请选择：").
//		Click("hours", "营业时间", hours).
//		Handoff("转人工", "", "正在为您转接人工客服…").
//		Build("")
type MenuBuilder struct {
	rt     *Router
	head   string
	items  []MenuItem
	routes map[string]Handler
	order  []string
	err    error
}

// Menu starts a msgmenu with head text (≤ 1024 bytes; may be empty) whose click items route to rt.
func (rt *Router) Menu(head string) *MenuBuilder {
	return &MenuBuilder{rt: rt, head: head, routes: map[string]Handler{}}
}

// Click adds a click item showing label: clicking it sends label back as a text with menu_id id,
// which the Router hands to h. id must be non-empty and unique within the menu.
func (b *MenuBuilder) Click(id, label string, h Handler) *MenuBuilder {
	if id == "" {
		b.fail(invalidf("menu: click item %q has no id", label))
		return b
	}
	if _, dup := b.routes[id]; dup {
		b.fail(invalidf("menu: click id %q used twice", id))
		return b
	}
	b.routes[id] = orNoop(h)
	b.order = append(b.order, id)
	b.items = append(b.items, MenuClick(id, label))
	return b
}

// Handoff adds a click item showing label (such as "转人工") whose handler is
// HandoffHandler(servicerUserID, notice): it sends notice (unless empty), then moves the session to
// that servicer, or to the queue when servicerUserID is empty or the servicer cannot take it.
func (b *MenuBuilder) Handoff(label, servicerUserID, notice string) *MenuBuilder {
	id := MenuIDHandoff
	if servicerUserID != "" {
		id += "." + servicerUserID
	}
	return b.Click(id, label, HandoffHandler(servicerUserID, notice))
}

// Item adds any other item as it is: MenuView, MenuMiniProgram, MenuText, or a MenuClick whose id
// another route handles.
func (b *MenuBuilder) Item(it MenuItem) *MenuBuilder {
	b.items = append(b.items, it)
	return b
}

func (b *MenuBuilder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Build returns the menu with tail text (≤ 1024 bytes; may be empty) and registers its click
// routes on the Router. It fails, registering nothing, with an error wrapping ErrInvalidArgument
// when an item was invalid, when there are more than MaxMenuItems items (WeCom answers 95008, §6),
// or when the menu does not pass the checks Replier.Menu applies before sending. The menu can be
// sent any number of times, to any customer.
func (b *MenuBuilder) Build(tail string) (*Menu, error) {
	if b.err != nil {
		return nil, b.err
	}
	m := NewMenu(b.head, append([]MenuItem(nil), b.items...), tail)
	if _, _, err := contentPayload(m); err != nil {
		return nil, err
	}
	for _, id := range b.order {
		b.rt.OnMenu(id, b.routes[id])
	}
	return m, nil
}

// HandoffHandler returns a Handler that hands the customer to a human (转人工): it sends notice
// first when notice is not empty, then moves the session to servicerUserID (state 3) or, when
// that is empty, not receiving (95019) or not activated (95014), to the queue (state 2). The bot
// stays quiet afterwards: the Replier refuses to send while a human has the session
// (ErrHumanServicer) or it is queued (ErrSessionQueued). A rerun after the session was already
// handed over (WeCom refuses the repeated change with 95016) counts as done.
func HandoffHandler(servicerUserID, notice string) Handler {
	return func(ctx context.Context, m *Message, r Replier) error {
		if notice != "" {
			if err := r.Text(ctx, notice); err != nil {
				return err // already with a human or queued (a reply outcome), or a failure to retry
			}
		}
		err := r.Handoff(ctx, servicerUserID)
		if servicerUserID != "" && (errors.Is(err, ErrServicerNotReceiving) || errors.Is(err, ErrServicerNotActivated)) {
			err = r.Handoff(ctx, "")
		}
		if errors.Is(err, ErrInvalidStateTransition) {
			// A rerun of a handoff that went through: the session is with a human or queued now.
			if rerr := r.Ready(ctx); errors.Is(rerr, ErrHumanServicer) || errors.Is(rerr, ErrSessionQueued) {
				return nil
			}
		}
		return err
	}
}
