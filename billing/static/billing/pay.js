/*
 * Backstop payment step: Stripe's Payment Element, confirmed with stripe.confirmPayment.
 * The Element offers what the PaymentIntent lists, and checkout lists cards only
 * (docs/decisions/0029-cards-only.md): every answer below is a card's.
 *
 * Written against the public Stripe.js v3 API only, so it runs unchanged with https://js.stripe.com/v3
 * and with the emulator's stand-in. The rule: a decline (or a failed bank check) is shown here and the
 * customer retries on the same order; anything else that goes wrong after "Pay" sends the customer to
 * the order's status page, which always knows whether money was taken.
 */
(function () {
  'use strict';

  var ANSWER_TIMEOUT_MS = 30000;      // no answer from Stripe within this: go to the status page
  var CHECK_TIMEOUT_MS = 10000;       // asking Stripe where the payment stands
  var MAX_WAIT_MS = 10 * 60 * 1000;   // even during a bank check, stop waiting after this

  var form = document.getElementById('payment-form');
  if (!form) return;
  var button = document.getElementById('pay-button');
  var message = document.getElementById('payment-message');
  var loading = document.getElementById('payment-loading');
  var unavailable = document.getElementById('payment-unavailable');
  var statusUrl = form.getAttribute('data-status-url');
  var returnUrl = form.getAttribute('data-return-url');
  var payLabel = button.textContent;
  var busyLabel = button.getAttribute('data-busy-label') || 'Confirming your payment…';

  var NOT_CHARGED = 'You have not been charged.';

  var ready = false;
  var busy = false;
  var leaving = false;
  var watchdog = null;
  var startedAt = 0;

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function goToStatus() {
    if (leaving) return;
    leaving = true;
    window.clearTimeout(watchdog);
    window.location.assign(statusUrl);
  }

  function showUnavailable() {
    form.hidden = true;
    unavailable.hidden = false;
  }

  function showMessage(text) {
    message.textContent = text;
    message.hidden = false;
  }

  function clearMessage() {
    message.hidden = true;
    message.textContent = '';
  }

  function setBusy(on) {
    busy = on;
    button.disabled = on || !ready;
    button.textContent = on ? busyLabel : payLabel;
    form.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  // Words for a payment that did not go through and can be retried here, on the same order.
  function retryableMessage(error) {
    if (error.type === 'card_error') {
      return (error.message || 'Your card was declined.') + ' ' + NOT_CHARGED +
        ' You can try again with another card, or check the details and retry.';
    }
    if (error.type === 'validation_error') {
      return (error.message || 'Please check your card details.') + ' ' + NOT_CHARGED;
    }
    if (error.code === 'payment_intent_authentication_failure') {
      return "Your bank's security check wasn't completed, so the payment didn't go through. " +
        NOT_CHARGED + ' You can try again, or use another card.';
    }
    return null;
  }

  if (typeof window.Stripe === 'undefined') {
    showUnavailable();
    return;
  }

  var clientSecret = readJson('stripe-client-secret');
  var stripe;
  var elements;
  try {
    stripe = window.Stripe(readJson('stripe-publishable-key'));
    elements = stripe.elements({
      clientSecret: clientSecret,
      appearance: {
        theme: 'stripe',
        variables: { colorPrimary: '#2456c7', colorText: '#1d2430', colorDanger: '#b42318', borderRadius: '8px' }
      }
    });
    var paymentElement = elements.create('payment');
    paymentElement.on('ready', function () {
      ready = true;
      loading.hidden = true;
      setBusy(false);
    });
    paymentElement.on('loaderror', showUnavailable);
    paymentElement.mount('#payment-element');
  } catch (err) {
    showUnavailable();
    return;
  }

  // The customer may be in their bank's security check (which can take minutes): before giving up
  // on an answer, ask Stripe where the payment stands. Only a payment still waiting for that check
  // keeps us here; anything else goes to the status page.
  function onSlowAnswer() {
    if (leaving || !busy) return;
    if (Date.now() - startedAt > MAX_WAIT_MS) { goToStatus(); return; }
    var gaveUp = new Promise(function (resolve) { window.setTimeout(resolve, CHECK_TIMEOUT_MS, null); });
    Promise.race([stripe.retrievePaymentIntent(clientSecret), gaveUp]).then(function (result) {
      if (leaving || !busy) return;
      var intent = result && result.paymentIntent;
      if (intent && intent.status === 'requires_action') {
        watchdog = window.setTimeout(onSlowAnswer, ANSWER_TIMEOUT_MS);
      } else {
        goToStatus();
      }
    }, goToStatus);
  }

  async function pay() {
    startedAt = Date.now();
    watchdog = window.setTimeout(onSlowAnswer, ANSWER_TIMEOUT_MS);
    var result;
    try {
      // On success Stripe.js takes the customer to return_url itself and this never resolves.
      result = await stripe.confirmPayment({ elements: elements, confirmParams: { return_url: returnUrl } });
    } catch (err) {
      goToStatus();
      return;
    }
    window.clearTimeout(watchdog);
    if (leaving) return;
    var text = result && result.error ? retryableMessage(result.error) : null;
    if (text === null) {
      // Not a plain decline, or no clear answer: the status page knows the truth.
      goToStatus();
      return;
    }
    showMessage(text);
    setBusy(false);
  }

  // Back from the status page's "Finish paying" with the bank's check still open (the customer
  // closed its window): offer to finish that very check, next to the card form for another card.
  // Nothing has been taken until the bank confirms.
  function offerToFinishBankCheck() {
    stripe.retrievePaymentIntent(clientSecret).then(function (result) {
      var intent = result && result.paymentIntent;
      if (!intent || intent.status !== 'requires_action' || leaving) return;
      var box = document.createElement('div');
      box.className = 'notice';
      box.id = 'payment-bank-check';
      var text = document.createElement('p');
      text.textContent = 'Your bank asked you to confirm this payment, and it hasn\'t been confirmed yet. ' +
        NOT_CHARGED + ' Confirm it with your bank, or pay below with another card.';
      var finish = document.createElement('button');
      finish.type = 'button';
      finish.className = 'button';
      finish.id = 'payment-bank-check-button';
      finish.textContent = 'Confirm with your bank';
      box.appendChild(text);
      box.appendChild(finish);
      form.parentNode.insertBefore(box, form);
      finish.addEventListener('click', function () {
        if (busy || leaving) return;
        clearMessage();
        setBusy(true);
        finish.disabled = true;
        stripe.handleNextAction({ clientSecret: clientSecret }).then(function (outcome) {
          var error = outcome && outcome.error;
          if (!error) { goToStatus(); return; }
          var words = retryableMessage(error);
          if (words === null) { goToStatus(); return; }
          box.hidden = true;
          showMessage(words);
          setBusy(false);
        }, goToStatus);
      });
    }, function () { /* the card form still works; the status page knows the rest */ });
  }
  offerToFinishBankCheck();

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (busy || !ready || leaving) return;
    clearMessage();
    setBusy(true);
    pay();
  });

  // Back from the status page via the browser's cache: start fresh (the server decides what to show).
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) window.location.reload();
  });
})();
