// What the operator's modules share: the logged-in client, the protocol's event stream, and
// waiting for a condition the js-sdk's events change.

export const session = { client: null, password: null };
const waiters = new Set(); // functions re-checked on every change; each returns true when done

export function emit(name, fields) {
  process.stdout.write(JSON.stringify({ event: name, ...fields }) + "\n");
}

export function changed() {
  for (const check of [...waiters]) {
    try {
      if (check()) waiters.delete(check);
    } catch (error) {
      waiters.delete(check);
      console.error("waiter failed", error);
    }
  }
}

// Resolves with check()'s first truthy value, re-checked on every change and every 200 ms.
export function until(check, timeoutSeconds, what) {
  return new Promise((resolveWait, rejectWait) => {
    let timer = null;
    let ticker = null;
    const done = (fn, value) => {
      clearTimeout(timer);
      clearInterval(ticker);
      waiters.delete(probe);
      fn(value);
    };
    const probe = () => {
      let value;
      try {
        value = check();
      } catch (error) {
        done(rejectWait, error);
        return true;
      }
      if (value === undefined || value === null || value === false) return false;
      if (value instanceof Promise) {
        value.then((v) => done(resolveWait, v), (e) => done(rejectWait, e));
      } else {
        done(resolveWait, value);
      }
      return true;
    };
    if (probe()) return;
    waiters.add(probe);
    ticker = setInterval(() => {
      if (probe()) clearInterval(ticker);
    }, 200);
    timer = setTimeout(
      () => done(rejectWait, new Error(`timed out after ${timeoutSeconds} s waiting for ${what}`)),
      timeoutSeconds * 1000,
    );
  });
}

// Resolves with the first truthy value of the async check(), tried every 250 ms.
export async function poll(check, timeoutSeconds, what) {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last;
  for (;;) {
    last = await check();
    if (last.ok) return last.value;
    if (Date.now() > deadline) {
      const seen = JSON.stringify(last.value);
      throw new Error(`timed out after ${timeoutSeconds} s waiting for ${what}; last ${seen}`);
    }
    await new Promise((done) => setTimeout(done, 250));
  }
}

export function crypto() {
  const api = session.client?.getCrypto();
  if (!api) throw new Error("not logged in: send 'login' first");
  return api;
}

export function nameOf(enumeration, value) {
  return value === null || value === undefined ? null : (enumeration[value] ?? String(value));
}
