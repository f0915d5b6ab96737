// Portcullis passkeys: when the button of a form marked data-webauthn is used, asks the
// server (data-begin) for a ceremony, runs it, then submits the browser's answer with the
// form. The only script of the site; no framework.
(function () {
  'use strict';

  function fromB64url(s) {
    var b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) { b64 += '='; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function decodeList(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = fromB64url(c.id);
      return copy;
    });
  }

  function creationOptions(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = decodeList(pk.excludeCredentials);
    return pk;
  }

  function requestOptions(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = decodeList(pk.allowCredentials);
    return pk;
  }

  function registration(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(r.attestationObject),
        clientDataJSON: toB64url(r.clientDataJSON),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : []
      },
      extensions: cred.getClientExtensionResults()
    };
  }

  function assertion(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      },
      extensions: cred.getClientExtensionResults()
    };
  }

  function showError(form, message) {
    var el = form.querySelector('[data-webauthn-error]');
    if (el) {
      el.textContent = message;
      el.setAttribute('role', 'alert');
      el.hidden = false;
    }
  }

  // Asks the server to begin a ceremony, posting the form's fields (its CSRF token among them).
  function begin(form) {
    return fetch(form.getAttribute('data-begin'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json' },
      body: new URLSearchParams(new FormData(form))
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok || !body.ceremony || !body.options) {
          var err = new Error(body.error || 'The passkey could not be used.');
          err.shown = true;
          throw err;
        }
        return body;
      });
    });
  }

  function run(form, button) {
    if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
      showError(form, 'This browser does not support passkeys.');
      return;
    }
    var register = form.getAttribute('data-webauthn') === 'register';
    if (register) {
      var name = form.querySelector('input[name=name]');
      if (name && !name.reportValidity()) { return; }
    }
    button.disabled = true;
    begin(form).then(function (started) {
      form.querySelector('input[name=ceremony]').value = started.ceremony;
      return register
        ? navigator.credentials.create({ publicKey: creationOptions(started.options) })
        : navigator.credentials.get({ publicKey: requestOptions(started.options) });
    }).then(function (cred) {
      if (!cred) { throw new Error('no credential'); }
      form.querySelector('input[name=credential]').value =
        JSON.stringify(register ? registration(cred) : assertion(cred));
      form.submit();
    }).catch(function (e) {
      button.disabled = false;
      showError(form, e && e.shown ? e.message
        : e && e.name === 'NotAllowedError'
          ? 'The passkey request was cancelled or timed out.'
          : 'The passkey could not be used.');
    });
  }

  var forms = document.querySelectorAll('form[data-webauthn]');
  Array.prototype.forEach.call(forms, function (form) {
    var button = form.querySelector('button');
    if (!button) { return; }
    button.addEventListener('click', function (ev) {
      ev.preventDefault();
      run(form, button);
    });
  });
})();
