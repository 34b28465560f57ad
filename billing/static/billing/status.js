/*
 * Backstop order status page: keeps the server-rendered status up to date by polling the status API.
 * The page already tells the truth without JavaScript; this only refreshes it.
 */
(function () {
  'use strict';

  var FAST_MS = 2000;                 // poll interval for the first minute
  var SLOW_MS = 10000;                // then this
  var FAST_FOR_MS = 60 * 1000;
  var GIVE_UP_MS = 10 * 60 * 1000;    // then stop and tell the customer we'll email
  var REQUEST_TIMEOUT_MS = 8000;

  var box = document.getElementById('order-status');
  if (!box) return;
  var apiUrl = box.getAttribute('data-status-api-url');
  var headline = document.getElementById('status-headline');
  var message = document.getElementById('status-message');
  var working = document.getElementById('status-working');
  var reconnecting = document.getElementById('status-reconnecting');
  var stopped = document.getElementById('status-stopped');
  var payBlock = document.getElementById('status-pay');
  var payLink = document.getElementById('status-pay-link');
  var againBlock = document.getElementById('status-again');
  var signinBlock = document.getElementById('status-signin');
  var refundBlock = document.getElementById('status-refund');
  var statement = document.getElementById('status-statement');
  var statementLabel = document.getElementById('status-statement-label');

  var TONES = { active: 'ok', refunding: 'ok', refunded: 'ok', failed: 'warn', attention: 'warn', refund_sent_back: 'warn' };

  // Coming back from the payment step adds Stripe's parameters to the address; drop them so the
  // address the customer bookmarks or shares is just the order's page.
  (function cleanAddress() {
    if (!window.history || !window.history.replaceState) return;
    var url = new URL(window.location.href);
    var had = false;
    ['payment_intent', 'payment_intent_client_secret', 'redirect_status'].forEach(function (name) {
      if (url.searchParams.has(name)) { url.searchParams.delete(name); had = true; }
    });
    if (had) window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
  })();

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function render(status) {
    setText(headline, status.headline);
    setText(message, status.message);
    box.setAttribute('data-status-code', status.code);
    box.setAttribute('data-charged', status.charged ? 'true' : 'false');
    box.setAttribute('data-final', status.final ? 'true' : 'false');
    box.className = 'notice' + (TONES[status.code] ? ' ' + TONES[status.code] : '');
    // Nothing taken and the customer can act: no spinner (nothing is in progress on our side),
    // and the button back to the payment step, worded by the server ("Finish paying", "Try again").
    var payable = typeof status.pay_label === 'string' && status.pay_label !== '';
    if (working) working.hidden = !!status.final || payable;
    if (payBlock) payBlock.hidden = !payable;
    if (payLink && payable) setText(payLink, status.pay_label);
    if (againBlock) againBlock.hidden = status.code !== 'canceled';
    if (signinBlock) signinBlock.hidden = status.code !== 'active';
    if (refundBlock) refundBlock.hidden = !status.refund_offer;
    if (statement && status.statement_descriptor) {
      setText(statement, status.statement_descriptor);
      statement.hidden = statementLabel.hidden = false;
    }
    if (status.code === 'active' || status.code === 'refunded') {
      document.title = status.headline + ' · ' + box.getAttribute('data-site-name');
    }
  }

  function looksLikeStatus(body) {
    return body && typeof body.code === 'string' && typeof body.headline === 'string' &&
      typeof body.message === 'string' && typeof body.final === 'boolean';
  }

  var startedAt = Date.now();

  function schedule() {
    var elapsed = Date.now() - startedAt;
    if (elapsed >= GIVE_UP_MS) {
      if (working) working.hidden = true;
      reconnecting.hidden = true;
      // Nothing is in progress on our side for an unpaid order, so promise no email for it.
      var idle = !!payBlock && !payBlock.hidden;
      document.getElementById('status-stopped-working').hidden = idle;
      document.getElementById('status-stopped-idle').hidden = !idle;
      stopped.hidden = false;
      return;
    }
    window.setTimeout(poll, elapsed < FAST_FOR_MS ? FAST_MS : SLOW_MS);
  }

  function poll() {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    fetch(apiUrl, {
      headers: { Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'same-origin',
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok) throw new Error('status ' + response.status);
      return response.json();
    }).then(function (body) {
      if (!looksLikeStatus(body)) throw new Error('unexpected answer');
      window.clearTimeout(timer);
      reconnecting.hidden = true;
      render(body);
      if (!body.final) schedule();
    }).catch(function () {
      // Keep what we last knew on screen; try again on the usual rhythm.
      window.clearTimeout(timer);
      reconnecting.hidden = false;
      schedule();
    });
  }

  if (box.getAttribute('data-final') !== 'true') schedule();
})();
