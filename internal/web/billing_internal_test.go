package web

import "testing"

// TestFormatMoney covers how the Billing page writes an invoice's total: cents
// with the currency's symbol, whole units for zero-decimal currencies, the code
// for currencies without a symbol, and credits (negative totals).
func TestFormatMoney(t *testing.T) {
	for _, tc := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{1999, "usd", "$19.99"},
		{5, "eur", "€0.05"},
		{-250, "gbp", "-£2.50"},
		{500, "jpy", "500 JPY"},
		{100000, "chf", "1000.00 CHF"},
	} {
		if got := formatMoney(tc.amount, tc.currency); got != tc.want {
			t.Errorf("formatMoney(%d, %q) = %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
}
