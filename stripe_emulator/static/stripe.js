/*
 * Backstop Stripe emulator — Stripe.js v3 stand-in.
 *
 * Served by the emulator at GET /v3/. It implements the subset of the real
 * Stripe.js v3 API that Backstop's checkout uses, with the same names, argument
 * shapes and promise results, so a page written for real Stripe.js works
 * unchanged against the emulator:
 *
 *   Stripe(publishableKey, options?)
 *   stripe.elements({clientSecret, appearance?})
 *   elements.create('payment', options?)  -> element
 *   element.mount / unmount / destroy / on / once / off / focus / blur / clear / update
 *   elements.submit(), elements.getElement('payment'), elements.update(options)
 *   stripe.confirmPayment({elements, clientSecret?, confirmParams, redirect?})
 *   stripe.retrievePaymentIntent(clientSecret)
 *   stripe.handleNextAction({clientSecret})
 *
 * Requests go to the origin this script was loaded from, exactly as real
 * Stripe.js talks to api.stripe.com: form-encoded bodies with the publishable
 * key in `key` and the PaymentIntent's `client_secret`.
 *
 * Differences from the real thing (deliberate): the Payment Element renders
 * plain inputs in the host page instead of inside a cross-origin iframe, offers
 * only cards, and is labelled "Test mode — emulator". No telemetry, no fraud
 * signals, no wallets, no Link. Plain modern JavaScript, no dependencies.
 */
(function () {
  'use strict';

  if (window.Stripe && window.Stripe.__emulator) {
    console.warn('Stripe emulator: stripe.js was included more than once; keeping the first copy.');
    return;
  }

  // ----------------------------------------------------------------- setup --

  // The API base is the origin of this script's own src. document.currentScript
  // is only set while the script first runs, so read it now.
  var API_BASE = (function () {
    var script = document.currentScript;
    if (!script || !script.src) {
      var scripts = document.getElementsByTagName('script');
      for (var i = scripts.length - 1; i >= 0; i--) {
        if (/\/v3\/?(\?.*)?$/.test(scripts[i].src || '')) { script = scripts[i]; break; }
      }
    }
    if (!script || !script.src) return window.location.origin;
    return new URL(script.src, window.location.href).origin;
  })();

  var STYLE_ID = 'stripe-emulator-styles';
  var instanceCounter = 0;

  function IntegrationError(message) {
    var err = new Error(message);
    err.name = 'IntegrationError';
    return err;
  }

  function resolveTarget(domElementOrSelector, method) {
    if (typeof domElementOrSelector === 'string') {
      var found = document.querySelector(domElementOrSelector);
      if (!found) {
        throw IntegrationError(
          'The selector you specified (' + domElementOrSelector + ') applies to no DOM elements ' +
          'that are currently on the page.\nMake sure the element exists on the page before calling ' +
          method + '().'
        );
      }
      return found;
    }
    if (domElementOrSelector && domElementOrSelector.nodeType === 1) return domElementOrSelector;
    throw IntegrationError('Invalid DOM element. Make sure to call ' + method + '() with a valid DOM element or selector.');
  }

  function paymentIntentIdFromSecret(clientSecret) {
    var m = /^(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(clientSecret || '');
    return m ? m[1] : null;
  }

  function checkClientSecret(clientSecret, method) {
    var id = paymentIntentIdFromSecret(clientSecret);
    if (!id) {
      throw IntegrationError(
        'Invalid value for ' + method + ': clientSecret should be a client secret of the form ' +
        '${id}_secret_${secret}. You specified: ' + clientSecret + '.'
      );
    }
    return id;
  }

  // Stripe's form encoding of nested objects: a[b][c]=v, arrays as a[0][b]=v.
  function encodeForm(params, prefix, out) {
    out = out || new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      var name = prefix ? prefix + '[' + key + ']' : key;
      if (value === undefined || value === null) return;
      if (Array.isArray(value)) {
        value.forEach(function (item, index) {
          if (item !== null && typeof item === 'object') encodeForm(item, name + '[' + index + ']', out);
          else out.append(name + '[' + index + ']', String(item));
        });
      } else if (typeof value === 'object') {
        encodeForm(value, name, out);
      } else {
        out.append(name, String(value));
      }
    });
    return out;
  }

  function deepMerge(target, source) {
    Object.keys(source || {}).forEach(function (key) {
      var value = source[key];
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        if (!target[key] || typeof target[key] !== 'object') target[key] = {};
        deepMerge(target[key], value);
      } else {
        target[key] = value;
      }
    });
    return target;
  }

  // One API call. Always resolves: {data} on 2xx, {error} otherwise, as real
  // Stripe.js never rejects for API or network failures.
  function apiRequest(method, path, params) {
    var url = API_BASE + path;
    var init = { method: method, credentials: 'omit', cache: 'no-store' };
    var body = encodeForm(params);
    if (method === 'GET') {
      url += '?' + body.toString();
    } else {
      init.body = body; // application/x-www-form-urlencoded; a CORS "simple" request
    }
    return fetch(url, init).then(
      function (response) {
        return response.text().then(function (text) {
          var json = null;
          try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
          if (response.ok && json && !json.error) return { data: json };
          if (json && json.error) return { error: json.error };
          return {
            error: {
              type: 'api_error',
              message: 'An unexpected error occurred (HTTP ' + response.status + ' from the Stripe emulator).'
            }
          };
        });
      },
      function (networkError) {
        return {
          error: {
            type: 'api_connection_error',
            message: 'We could not connect to Stripe (the emulator at ' + API_BASE + '). ' +
              'Check your connection and try again.' + (networkError && networkError.message ? ' (' + networkError.message + ')' : '')
          }
        };
      }
    );
  }

  // ------------------------------------------------------------------ card --

  var CARD_MESSAGES = {
    incomplete_number: 'Your card number is incomplete.',
    invalid_number: 'Your card number is invalid.',
    incomplete_expiry: "Your card's expiration date is incomplete.",
    invalid_expiry_month: "Your card's expiration date is invalid.",
    invalid_expiry_year_past: "Your card's expiration year is in the past.",
    invalid_expiry_month_past: "Your card's expiration date is in the past.",
    incomplete_cvc: "Your card's security code is incomplete."
  };

  function digits(value) { return String(value || '').replace(/\D/g, ''); }

  function cardBrand(number) {
    if (/^4/.test(number)) return 'visa';
    if (/^(5[1-5]|2[2-7])/.test(number)) return 'mastercard';
    if (/^3[47]/.test(number)) return 'amex';
    if (/^(6011|65|64[4-9])/.test(number)) return 'discover';
    if (/^3(0[0-5]|[689])/.test(number)) return 'diners';
    if (/^35/.test(number)) return 'jcb';
    if (/^62/.test(number)) return 'unionpay';
    return 'unknown';
  }

  function cardLength(brand) {
    if (brand === 'amex') return 15;
    if (brand === 'diners') return 14;
    return 16;
  }

  function luhnValid(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var d = Number(number.charAt(number.length - 1 - i));
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function formatNumber(number) {
    var brand = cardBrand(number);
    number = number.slice(0, brand === 'amex' || brand === 'diners' ? cardLength(brand) : 19);
    if (brand === 'amex') {
      return [number.slice(0, 4), number.slice(4, 10), number.slice(10)].filter(Boolean).join(' ');
    }
    return number.replace(/(\d{4})(?=\d)/g, '$1 ');
  }

  // "MM / YY" as the user types: "4" -> "04 / ", "1/2" -> "01 / 2", "1234" -> "12 / 34".
  function formatExpiry(raw, deleting) {
    var month, year;
    var typed = /^\s*(\d{1,2})\s*\/\s*(\d*)/.exec(raw);
    if (typed) {
      month = typed[1].length === 1 ? '0' + typed[1] : typed[1];
      year = typed[2].length === 4 ? typed[2].slice(2) : typed[2].slice(0, 2);
    } else {
      var d = digits(raw).slice(0, 4);
      if (d.length === 1 && Number(d) > 1) d = '0' + d;
      month = d.slice(0, 2);
      year = d.slice(2);
    }
    if (month.length < 2) return month;
    if (!year) return deleting ? month : month + ' / ';
    return month + ' / ' + year;
  }

  // Returns {number: {complete, error}, expiry: {...}, cvc: {...}, empty}.
  function validateCard(values) {
    var number = digits(values.number);
    var brand = cardBrand(number);
    var expiry = digits(values.expiry);
    var cvc = digits(values.cvc);
    var result = { brand: brand, empty: !number && !expiry && !cvc };

    var wanted = cardLength(brand);
    if (!number) result.number = { complete: false, code: 'incomplete_number', empty: true };
    else if (number.length < wanted) result.number = { complete: false, code: 'incomplete_number', partial: true };
    else if (!luhnValid(number)) result.number = { complete: false, code: 'invalid_number', invalid: true };
    else result.number = { complete: true };

    if (expiry.length < 4) {
      result.expiry = { complete: false, code: 'incomplete_expiry', empty: !expiry, partial: !!expiry };
    } else {
      var month = Number(expiry.slice(0, 2));
      var year = 2000 + Number(expiry.slice(2, 4));
      var now = new Date();
      var thisYear = now.getFullYear();
      var thisMonth = now.getMonth() + 1;
      if (month < 1 || month > 12) result.expiry = { complete: false, code: 'invalid_expiry_month', invalid: true };
      else if (year < thisYear) result.expiry = { complete: false, code: 'invalid_expiry_year_past', invalid: true };
      else if (year === thisYear && month < thisMonth) {
        result.expiry = { complete: false, code: 'invalid_expiry_month_past', invalid: true };
      } else result.expiry = { complete: true, month: month, year2: expiry.slice(2, 4) };
    }

    var cvcLength = brand === 'amex' ? 4 : 3;
    if (cvc.length < cvcLength) result.cvc = { complete: false, code: 'incomplete_cvc', empty: !cvc, partial: !!cvc };
    else result.cvc = { complete: true };

    result.complete = result.number.complete && result.expiry.complete && result.cvc.complete;
    return result;
  }

  function validationError(code, extra) {
    var err = { type: 'validation_error', code: code, message: CARD_MESSAGES[code] || 'Your card details are invalid.' };
    return deepMerge(err, extra || {});
  }

  // ---------------------------------------------------------------- styles --

  function ensureStyles() {
    if (document.getElementById(STYLE_ID)) return;
    var style = document.createElement('style');
    style.id = STYLE_ID;
    style.textContent = [
      '.stripe-emu{--se-primary:#0570de;--se-text:#30313d;--se-muted:#6d6e78;--se-danger:#df1b41;',
      '--se-bg:#ffffff;--se-border:#e0e0e6;--se-radius:6px;',
      '--se-font:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;',
      'font-family:var(--se-font);color:var(--se-text);font-size:15px;line-height:1.4;box-sizing:border-box;}',
      '.stripe-emu *,.stripe-emu *::before,.stripe-emu *::after{box-sizing:border-box;}',
      '.stripe-emu__badge{display:inline-flex;align-items:center;gap:6px;margin:0 0 12px;padding:3px 8px;',
      'border-radius:999px;background:#fff4e5;color:#8a4b00;font-size:12px;font-weight:500;letter-spacing:.01em;}',
      '.stripe-emu__badge::before{content:"";width:6px;height:6px;border-radius:50%;background:#e08600;}',
      '.stripe-emu__row{display:flex;gap:12px;}',
      '.stripe-emu__field{flex:1 1 0;min-width:0;margin:0 0 12px;}',
      '.stripe-emu__label{display:block;margin:0 0 4px;font-size:14px;font-weight:500;color:var(--se-text);}',
      '.stripe-emu__input{display:block;width:100%;padding:10px 12px;font:inherit;font-size:16px;',
      'color:var(--se-text);background:var(--se-bg);border:1px solid var(--se-border);border-radius:var(--se-radius);',
      'box-shadow:0 1px 1px rgba(0,0,0,.03),0 3px 6px rgba(0,0,0,.02);outline:none;',
      'transition:border-color .15s ease,box-shadow .15s ease;font-variant-numeric:tabular-nums;}',
      '.stripe-emu__input::placeholder{color:#a3a4ad;}',
      '.stripe-emu__input:focus{border-color:var(--se-primary);',
      'box-shadow:0 0 0 3px color-mix(in srgb,var(--se-primary) 25%,transparent);}',
      '.stripe-emu__input[aria-invalid="true"]{border-color:var(--se-danger);color:var(--se-danger);}',
      '.stripe-emu__input[aria-invalid="true"]:focus{box-shadow:0 0 0 3px color-mix(in srgb,var(--se-danger) 20%,transparent);}',
      '.stripe-emu__input:read-only{background:#f6f8fa;color:var(--se-muted);}',
      '.stripe-emu__error{margin:4px 0 0;font-size:13px;color:var(--se-danger);}',
      '.stripe-emu__error:empty{display:none;}',
      '.stripe-emu__note{margin:0;font-size:12px;color:var(--se-muted);}',
      '.stripe-emu-modal{position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;',
      'justify-content:center;padding:16px;background:rgba(26,31,54,.45);',
      'font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;}',
      '.stripe-emu-modal__dialog{width:100%;max-width:440px;background:#fff;border-radius:12px;overflow:hidden;',
      'box-shadow:0 20px 50px rgba(26,31,54,.3),0 4px 12px rgba(26,31,54,.15);}',
      '.stripe-emu-modal__header{display:flex;align-items:center;justify-content:space-between;gap:8px;',
      'padding:12px 16px;border-bottom:1px solid #ebeef1;font-size:13px;color:#6d6e78;white-space:nowrap;}',
      '.stripe-emu-modal__title{margin:0;font-size:14px;font-weight:600;color:#30313d;overflow:hidden;text-overflow:ellipsis;}',
      '.stripe-emu-modal__frame{display:block;width:100%;height:360px;border:0;background:#fff;}'
    ].join('');
    (document.head || document.documentElement).appendChild(style);
  }

  function applyAppearance(root, appearance) {
    var v = (appearance && appearance.variables) || {};
    var map = {
      colorPrimary: '--se-primary', colorText: '--se-text', colorDanger: '--se-danger',
      colorBackground: '--se-bg', borderRadius: '--se-radius', fontFamily: '--se-font',
      colorTextSecondary: '--se-muted'
    };
    Object.keys(map).forEach(function (key) {
      if (v[key]) root.style.setProperty(map[key], v[key]);
      else root.style.removeProperty(map[key]);
    });
  }

  // ---------------------------------------------------------- 3DS modal --

  // Shows the emulator's challenge page in a modal iframe and resolves with the
  // status it reports ({type: 'stripe-emulator-3ds', status}).
  function showChallenge(url) {
    return new Promise(function (resolve) {
      ensureStyles();
      var overlay = document.createElement('div');
      overlay.className = 'stripe-emu-modal';
      overlay.id = 'stripe-emulator-3ds-modal';
      overlay.setAttribute('data-stripe-emulator', '3ds-modal');
      overlay.setAttribute('role', 'dialog');
      overlay.setAttribute('aria-modal', 'true');
      overlay.setAttribute('aria-labelledby', 'stripe-emulator-3ds-title');

      var dialog = document.createElement('div');
      dialog.className = 'stripe-emu-modal__dialog';
      var header = document.createElement('div');
      header.className = 'stripe-emu-modal__header';
      var title = document.createElement('p');
      title.className = 'stripe-emu-modal__title';
      title.id = 'stripe-emulator-3ds-title';
      title.textContent = 'Confirm your payment';
      var note = document.createElement('span');
      note.textContent = 'Test mode'; // the challenge page inside says "Test mode — emulator"
      note.style.flexShrink = '0';
      header.appendChild(title);
      header.appendChild(note);

      var frame = document.createElement('iframe');
      frame.className = 'stripe-emu-modal__frame';
      frame.name = 'stripe-emulator-3ds';
      frame.title = '3D Secure authentication (test)';
      frame.src = url;

      dialog.appendChild(header);
      dialog.appendChild(frame);
      overlay.appendChild(dialog);

      var previousFocus = document.activeElement;
      var frameOrigin = new URL(url, window.location.href).origin;

      function onMessage(event) {
        if (event.source !== frame.contentWindow) return;
        if (event.origin !== frameOrigin) return;
        var data = event.data;
        if (!data || data.type !== 'stripe-emulator-3ds') return;
        window.removeEventListener('message', onMessage);
        if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
        if (previousFocus && previousFocus.focus) { try { previousFocus.focus(); } catch (e) { /* ignore */ } }
        resolve(data);
      }
      window.addEventListener('message', onMessage);
      document.body.appendChild(overlay);
      frame.focus();
    });
  }

  // ------------------------------------------------------- Payment Element --

  function PaymentElement(elementsGroup, options) {
    this._group = elementsGroup;
    this._options = options || {};
    this._handlers = {};
    this._container = null;
    this._root = null;
    this._inputs = null;
    this._touched = { number: false, expiry: false, cvc: false };
    this._destroyed = false;
    this._lastChange = null;
    this._index = ++instanceCounter;
  }

  PaymentElement.prototype.on = function (event, handler) {
    if (typeof handler !== 'function') throw IntegrationError('element.on(): handler must be a function.');
    (this._handlers[event] = this._handlers[event] || []).push({ fn: handler, once: false });
    return this;
  };
  PaymentElement.prototype.once = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push({ fn: handler, once: true });
    return this;
  };
  PaymentElement.prototype.off = function (event, handler) {
    if (!this._handlers[event]) return this;
    this._handlers[event] = handler
      ? this._handlers[event].filter(function (h) { return h.fn !== handler; })
      : [];
    return this;
  };
  PaymentElement.prototype._emit = function (event, payload) {
    var list = (this._handlers[event] || []).slice();
    this._handlers[event] = (this._handlers[event] || []).filter(function (h) { return !h.once; });
    payload = deepMerge({ elementType: 'payment' }, payload || {});
    list.forEach(function (h) {
      try { h.fn(payload); } catch (e) { setTimeout(function () { throw e; }); }
    });
  };

  PaymentElement.prototype._id = function (name) {
    return 'stripe-emu-' + name + (this._index > 1 ? '-' + this._index : '');
  };

  PaymentElement.prototype._buildField = function (key, spec) {
    var field = document.createElement('div');
    field.className = 'stripe-emu__field';
    var id = this._id(spec.name);
    var label = document.createElement('label');
    label.className = 'stripe-emu__label';
    label.htmlFor = id;
    label.textContent = spec.label;
    var input = document.createElement('input');
    input.className = 'stripe-emu__input';
    input.id = id;
    input.name = spec.name;
    input.type = 'text';
    input.inputMode = 'numeric';
    input.autocomplete = spec.autocomplete;
    input.placeholder = spec.placeholder;
    input.spellcheck = false;
    input.setAttribute('autocorrect', 'off');
    input.setAttribute('aria-invalid', 'false');
    var error = document.createElement('p');
    error.className = 'stripe-emu__error';
    error.id = id + '-error';
    error.setAttribute('role', 'alert');
    input.setAttribute('aria-describedby', error.id);
    field.appendChild(label);
    field.appendChild(input);
    field.appendChild(error);
    return { field: field, input: input, error: error };
  };

  PaymentElement.prototype.mount = function (domElementOrSelector) {
    if (this._destroyed) throw IntegrationError('This Element has already been destroyed. Please create a new one.');
    if (this._root) throw IntegrationError('This Element is already mounted. Use `unmount` to unmount the Element before re-mounting.');
    var container = resolveTarget(domElementOrSelector, 'mount');
    var self = this;
    ensureStyles();

    if (!this._inputs) {
      var root = document.createElement('div');
      root.className = 'stripe-emu';
      root.setAttribute('data-stripe-emulator', 'payment-element');

      var badge = document.createElement('p');
      badge.className = 'stripe-emu__badge';
      badge.textContent = 'Test mode — emulator';

      var group = document.createElement('fieldset');
      group.style.cssText = 'border:0;margin:0;padding:0;min-width:0;';
      var legend = document.createElement('legend');
      legend.textContent = 'Card details';
      legend.style.cssText = 'position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;';
      group.appendChild(legend);

      var number = this._buildField('number', {
        name: 'cardnumber', label: 'Card number', autocomplete: 'cc-number', placeholder: '1234 1234 1234 1234'
      });
      var expiry = this._buildField('expiry', {
        name: 'exp-date', label: 'Expiry (MM / YY)', autocomplete: 'cc-exp', placeholder: 'MM / YY'
      });
      var cvc = this._buildField('cvc', {
        name: 'cvc', label: 'CVC', autocomplete: 'cc-csc', placeholder: 'CVC'
      });
      number.input.maxLength = 23;
      expiry.input.maxLength = 7;
      cvc.input.maxLength = 4;
      var row = document.createElement('div');
      row.className = 'stripe-emu__row';
      row.appendChild(expiry.field);
      row.appendChild(cvc.field);
      group.appendChild(number.field);
      group.appendChild(row);

      var note = document.createElement('p');
      note.className = 'stripe-emu__note';
      note.textContent = 'Cards are never charged here: this form talks to the local Stripe emulator. ' +
        'Try 4242 4242 4242 4242 with any future date and any CVC.';

      root.appendChild(badge);
      root.appendChild(group);
      root.appendChild(note);
      this._root = root;
      this._inputs = { number: number, expiry: expiry, cvc: cvc };

      number.input.addEventListener('input', function () {
        var caretAtEnd = number.input.selectionStart === number.input.value.length;
        var formatted = formatNumber(digits(number.input.value));
        if (formatted !== number.input.value) {
          number.input.value = formatted;
          if (caretAtEnd) number.input.setSelectionRange(formatted.length, formatted.length);
        }
        self._changed('number');
      });
      expiry.input.addEventListener('input', function (event) {
        var deleting = event.inputType && event.inputType.indexOf('delete') === 0;
        var formatted = formatExpiry(expiry.input.value, deleting);
        if (formatted !== expiry.input.value) expiry.input.value = formatted;
        self._changed('expiry');
      });
      cvc.input.addEventListener('input', function () {
        var d = digits(cvc.input.value).slice(0, 4);
        if (d !== cvc.input.value) cvc.input.value = d;
        self._changed('cvc');
      });
      ['number', 'expiry', 'cvc'].forEach(function (key) {
        self._inputs[key].input.addEventListener('blur', function () {
          self._touched[key] = true;
          self._renderErrors();
        });
      });
      root.addEventListener('focusin', function (event) {
        if (!root.contains(event.relatedTarget)) self._emit('focus');
      });
      root.addEventListener('focusout', function (event) {
        if (!root.contains(event.relatedTarget)) self._emit('blur');
      });
    } else {
      this._root = this._detachedRoot;
      this._detachedRoot = null;
    }

    applyAppearance(this._root, this._group._options.appearance);
    this._applyReadOnly();
    container.appendChild(this._root);
    this._container = container;

    // Like real Stripe.js, check the client secret before reporting ready.
    var clientSecret = this._group._options.clientSecret;
    var ready = function () { if (self._root) self._emit('ready'); };
    if (clientSecret && paymentIntentIdFromSecret(clientSecret)) {
      apiRequest('GET', '/v1/payment_intents/' + paymentIntentIdFromSecret(clientSecret), {
        key: this._group._stripe._key, client_secret: clientSecret
      }).then(function (result) {
        if (result.error) { self._emit('loaderror', { error: result.error }); return; }
        // Real Stripe.js offers every type the PaymentIntent lists; the emulator runs cards only,
        // so it says when real Stripe would show more (a PaymentIntent made without
        // payment_method_types lists what the Dashboard enables).
        var others = (result.data.payment_method_types || []).filter(function (t) { return t !== 'card'; });
        if (others.length && self._root) {
          var note = document.createElement('p');
          note.className = 'stripe-emu__note';
          note.setAttribute('data-stripe-emulator', 'methods-not-emulated');
          note.textContent = 'Real Stripe would also offer: ' + others.join(', ') + ' (not emulated).';
          self._root.insertBefore(note, self._root.firstChild);
          console.warn('Stripe emulator: this PaymentIntent also allows ' + others.join(', ') +
            ', which real Stripe.js would offer; only cards are emulated.');
        }
        ready();
      });
    } else {
      setTimeout(ready, 0);
    }
  };

  PaymentElement.prototype.unmount = function () {
    if (!this._root) return;
    if (this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._detachedRoot = this._root;
    this._root = null;
    this._container = null;
  };

  PaymentElement.prototype.destroy = function () {
    this.unmount();
    this._destroyed = true;
    this._inputs = null;
    this._detachedRoot = null;
    this._handlers = {};
    if (this._group._elements.payment === this) delete this._group._elements.payment;
  };

  PaymentElement.prototype.focus = function () { if (this._inputs) this._inputs.number.input.focus(); };
  PaymentElement.prototype.blur = function () {
    if (this._root && this._root.contains(document.activeElement)) document.activeElement.blur();
  };
  PaymentElement.prototype.clear = function () {
    if (!this._inputs) return;
    var self = this;
    ['number', 'expiry', 'cvc'].forEach(function (key) {
      self._inputs[key].input.value = '';
      self._touched[key] = false;
    });
    this._changed(null);
  };
  PaymentElement.prototype.update = function (options) {
    deepMerge(this._options, options || {});
    this._applyReadOnly();
  };
  PaymentElement.prototype.collapse = function () { return this; };

  PaymentElement.prototype._applyReadOnly = function (busy) {
    if (!this._inputs) return;
    var readOnly = !!this._options.readOnly || !!busy;
    var self = this;
    ['number', 'expiry', 'cvc'].forEach(function (key) { self._inputs[key].input.readOnly = readOnly; });
  };

  PaymentElement.prototype._values = function () {
    if (!this._inputs) return { number: '', expiry: '', cvc: '' };
    return {
      number: this._inputs.number.input.value,
      expiry: this._inputs.expiry.input.value,
      cvc: this._inputs.cvc.input.value
    };
  };

  // The first error a user should see, in field order, or null.
  PaymentElement.prototype._firstError = function (state, onlyShown) {
    var keys = ['number', 'expiry', 'cvc'];
    for (var i = 0; i < keys.length; i++) {
      var s = state[keys[i]];
      if (s.complete) continue;
      if (onlyShown && !(s.invalid || (this._touched[keys[i]] && s.partial))) continue;
      return validationError(s.code);
    }
    return null;
  };

  PaymentElement.prototype._renderErrors = function (showAll) {
    if (!this._inputs) return;
    var state = validateCard(this._values());
    var self = this;
    ['number', 'expiry', 'cvc'].forEach(function (key) {
      var s = state[key];
      var show = !s.complete && (showAll || s.invalid || (self._touched[key] && s.partial));
      var parts = self._inputs[key];
      parts.error.textContent = show ? CARD_MESSAGES[s.code] : '';
      parts.input.setAttribute('aria-invalid', show ? 'true' : 'false');
    });
  };

  PaymentElement.prototype._changed = function (key) {
    var state = validateCard(this._values());
    if (key && state[key].complete) this._touched[key] = true;
    this._renderErrors();
    var payload = {
      complete: state.complete,
      empty: state.empty,
      collapsed: false,
      value: { type: 'card' }
    };
    var error = this._firstError(state, true);
    if (error) payload.error = error;
    this._emit('change', payload);
  };

  // Validates for submit/confirm: shows every error and returns the first one.
  PaymentElement.prototype._validateForSubmit = function () {
    if (!this._inputs) {
      return { error: validationError('incomplete_number') };
    }
    var state = validateCard(this._values());
    this._touched = { number: true, expiry: true, cvc: true };
    this._renderErrors(true);
    var error = this._firstError(state, false);
    if (error) {
      var keys = ['number', 'expiry', 'cvc'];
      for (var i = 0; i < keys.length; i++) {
        if (!state[keys[i]].complete) { this._inputs[keys[i]].input.focus(); break; }
      }
      return { error: error };
    }
    return {
      card: {
        number: digits(this._values().number),
        exp_month: String(state.expiry.month),
        exp_year: state.expiry.year2,
        cvc: digits(this._values().cvc)
      }
    };
  };

  // -------------------------------------------------------------- Elements --

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options || {};
    this._elements = {};
    if (this._options.clientSecret) checkClientSecret(this._options.clientSecret, 'stripe.elements()');
  }

  Elements.prototype.create = function (type, options) {
    if (type !== 'payment') {
      throw IntegrationError(
        'The Stripe emulator only implements the "payment" Element; elements.create(\'' + type + '\') is not supported.'
      );
    }
    if (this._elements.payment) {
      throw IntegrationError('Can only create one Element of type payment.');
    }
    var element = new PaymentElement(this, options);
    this._elements.payment = element;
    return element;
  };

  Elements.prototype.getElement = function (type) {
    return this._elements[type] || null;
  };

  Elements.prototype.update = function (options) {
    deepMerge(this._options, options || {});
    var element = this._elements.payment;
    if (element && element._root) applyAppearance(element._root, this._options.appearance);
  };

  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };

  Elements.prototype.submit = function () {
    var element = this._elements.payment;
    if (!element) {
      return Promise.resolve({
        error: { type: 'validation_error', code: 'incomplete', message: 'No Payment Element is mounted.' }
      });
    }
    var result = element._validateForSubmit();
    if (result.error) return Promise.resolve({ error: result.error });
    return Promise.resolve({ selectedPaymentMethod: 'card' });
  };

  // ---------------------------------------------------------------- Stripe --

  function redirectStatus(status) {
    if (status === 'succeeded' || status === 'requires_capture') return 'succeeded';
    if (status === 'processing') return 'processing';
    return 'failed';
  }

  function returnUrlWithParams(returnUrl, paymentIntent, clientSecret) {
    var url = new URL(returnUrl, window.location.href);
    url.searchParams.set('payment_intent', paymentIntent.id);
    url.searchParams.set('payment_intent_client_secret', clientSecret);
    url.searchParams.set('redirect_status', redirectStatus(paymentIntent.status));
    return url.toString();
  }

  function authenticationFailure(paymentIntent) {
    var base = paymentIntent.last_payment_error || {
      type: 'invalid_request_error',
      code: 'payment_intent_authentication_failure',
      message: 'We are unable to authenticate your payment method. Please choose a different ' +
        'payment method and try again.'
    };
    var error = deepMerge({}, base);
    error.payment_intent = paymentIntent;
    return error;
  }

  function StripeClient(key, options) {
    if (typeof key !== 'string' || !key) {
      throw IntegrationError('Please call Stripe() with your publishable key. You used an empty string.');
    }
    if (/^sk_/.test(key)) {
      throw IntegrationError('You should not use your secret key with Stripe.js.\nPlease pass a publishable key instead.');
    }
    this._key = key;
    this._options = options || {};
    this._apiBase = API_BASE;
  }

  StripeClient.prototype.elements = function (options) {
    return new Elements(this, options);
  };

  StripeClient.prototype._retrieve = function (clientSecret) {
    var id = paymentIntentIdFromSecret(clientSecret);
    return apiRequest('GET', '/v1/payment_intents/' + id, { key: this._key, client_secret: clientSecret });
  };

  StripeClient.prototype.retrievePaymentIntent = function (clientSecret) {
    checkClientSecret(clientSecret, 'retrievePaymentIntent');
    return this._retrieve(clientSecret).then(function (result) {
      return result.error ? { error: result.error } : { paymentIntent: result.data };
    });
  };

  // Runs the 3DS challenge for a PaymentIntent in requires_action and resolves
  // {paymentIntent} (authenticated) or {error} (failed).
  StripeClient.prototype._handleAction = function (paymentIntent, clientSecret) {
    var self = this;
    var action = paymentIntent.next_action;
    if (!action || action.type !== 'redirect_to_url' || !action.redirect_to_url || !action.redirect_to_url.url) {
      return Promise.resolve({
        error: {
          type: 'invalid_request_error',
          code: 'payment_intent_unexpected_state',
          message: 'The Stripe emulator cannot handle next_action of type ' +
            (action && action.type) + '.',
          payment_intent: paymentIntent
        }
      });
    }
    return showChallenge(action.redirect_to_url.url).then(function () {
      return self._retrieve(clientSecret);
    }).then(function (result) {
      if (result.error) return { error: result.error };
      var pi = result.data;
      if (pi.status === 'requires_payment_method' || pi.status === 'canceled' || pi.status === 'requires_action') {
        return { error: authenticationFailure(pi) };
      }
      return { paymentIntent: pi };
    });
  };

  StripeClient.prototype.handleNextAction = function (options) {
    options = options || {};
    var clientSecret = options.clientSecret;
    checkClientSecret(clientSecret, 'handleNextAction');
    var self = this;
    return this._retrieve(clientSecret).then(function (result) {
      if (result.error) return { error: result.error };
      if (result.data.status !== 'requires_action') return { paymentIntent: result.data };
      return self._handleAction(result.data, clientSecret);
    });
  };

  StripeClient.prototype.confirmPayment = function (options) {
    var self = this;
    options = options || {};
    var elements = options.elements;
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || 'always';

    return new Promise(function (resolve) {
      if (redirect !== 'always' && redirect !== 'if_required') {
        throw IntegrationError('Invalid value for confirmPayment: redirect should be one of the following strings: always, if_required. You specified: ' + redirect + '.');
      }
      if (elements && !(elements instanceof Elements)) {
        throw IntegrationError('Invalid value for confirmPayment: elements should be an Elements group. You specified: ' + typeof elements + '.');
      }
      var clientSecret = options.clientSecret || (elements && elements._options.clientSecret);
      if (!clientSecret) {
        throw IntegrationError('stripe.confirmPayment(): the `clientSecret` option is required when the Elements group was created without one.');
      }
      var id = checkClientSecret(clientSecret, 'confirmPayment');
      if (redirect === 'always' && !confirmParams.return_url) {
        throw IntegrationError('stripe.confirmPayment(): the `confirmParams.return_url` argument is required unless passing `redirect: \'if_required\'`');
      }
      if (!elements && !confirmParams.payment_method) {
        throw IntegrationError('stripe.confirmPayment(): expected either `elements` or `confirmParams.payment_method`.');
      }

      var element = elements ? elements.getElement('payment') : null;
      var params = deepMerge({}, confirmParams);
      if (elements && !confirmParams.payment_method) {
        if (!element) throw IntegrationError('stripe.confirmPayment(): no Payment Element was created from this Elements group.');
        var collected = element._validateForSubmit();
        if (collected.error) { resolve({ error: collected.error }); return; }
        var pmData = { type: 'card', card: collected.card };
        params.payment_method_data = deepMerge(pmData, confirmParams.payment_method_data || {});
        params.payment_method_data.type = 'card';
      }
      params.key = self._key;
      params.client_secret = clientSecret;

      if (element) element._applyReadOnly(true);
      var done = function (value) {
        if (element) element._applyReadOnly(false);
        resolve(value);
      };

      apiRequest('POST', '/v1/payment_intents/' + id + '/confirm', params).then(function (result) {
        if (result.error) return { error: result.error };
        var pi = result.data;
        if (pi.status === 'requires_action') return self._handleAction(pi, clientSecret);
        if (pi.status === 'requires_payment_method' || pi.status === 'canceled') {
          return { error: authenticationFailure(pi) };
        }
        return { paymentIntent: pi };
      }).then(function (outcome) {
        if (outcome.error) { done({ error: outcome.error }); return; }
        if (redirect === 'always') {
          // Like Stripe.js: navigate away, and leave the promise pending.
          window.location.assign(returnUrlWithParams(confirmParams.return_url, outcome.paymentIntent, clientSecret));
          return;
        }
        done({ paymentIntent: outcome.paymentIntent });
      });
    });
  };

  // Real Stripe.js's constructor works with or without `new`.
  function Stripe(key, options) {
    return new StripeClient(key, options);
  }
  Stripe.version = 3;
  Stripe.__emulator = true;
  Stripe.__emulatorApiBase = API_BASE;

  window.Stripe = Stripe;
})();
