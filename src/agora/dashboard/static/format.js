// Number and money formatting in the page's language. Money arrives as integer minor units
// with its currency; the currency's own number of decimals turns it into a price.

const lang = document.body.dataset.lang === "zh" ? "zh-CN" : "en";
const decimal = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 2 });

export function number(value) {
  return value === null || value === undefined ? "–" : decimal.format(value);
}

export function ratio(value) {
  return value === null || value === undefined ? "–" : percent.format(value);
}

function currencyFormat(currency) {
  return new Intl.NumberFormat(lang, { style: "currency", currency });
}

// Minor units (cents, fen) as the currency's major unit, for charts.
export function majorUnits(amount, currency) {
  return amount / 10 ** currencyFormat(currency).resolvedOptions().maximumFractionDigits;
}

export function money(amount, currency) {
  return currencyFormat(currency).format(majorUnits(amount, currency));
}

export function time(isoOrEpoch) {
  const date = typeof isoOrEpoch === "number" ? new Date(isoOrEpoch * 1000) : new Date(isoOrEpoch);
  return date.toLocaleTimeString(lang);
}
