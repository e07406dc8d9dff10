package bench

import (
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// isTerminal reports whether f is a character device (a terminal, in
// practice); a portable test, where a termios ioctl differs per system.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressUI draws mpb bars on a terminal; otherwise (or quiet) its bars do
// nothing and phase lines go to the log writer instead.
type progressUI struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars []*mpb.Bar
	once sync.Once
}

// uiBar is one bar; the zero value (no terminal) ignores updates.
type uiBar struct {
	b     *mpb.Bar
	total int64
}

func newProgressUI(o *Options, log io.Writer) *progressUI {
	u := &progressUI{}
	if o.Quiet || o.Log != nil || !isTerminal(os.Stderr) {
		return u
	}
	u.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(48))
	return u
}

// bar adds a bar; total 0 means unknown (it grows with the count).
func (u *progressUI) bar(name string, total int64) uiBar {
	if u.p == nil {
		return uiBar{}
	}
	b := u.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(name, decor.WC{W: 9, C: decor.DindentRight}), decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
	)
	u.mu.Lock()
	u.bars = append(u.bars, b)
	u.mu.Unlock()
	return uiBar{b, total}
}

func (b uiBar) set(n int64) {
	if b.b == nil {
		return
	}
	if b.total <= 0 {
		b.b.SetTotal(max(n, 1), false)
	}
	b.b.SetCurrent(n)
}

// stop completes every bar and waits for the last render. It is idempotent.
func (u *progressUI) stop() {
	if u.p == nil {
		return
	}
	u.once.Do(func() {
		u.mu.Lock()
		for _, b := range u.bars {
			b.SetTotal(-1, true)
		}
		u.mu.Unlock()
		u.p.Wait()
	})
}
