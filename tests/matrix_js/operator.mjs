// One operator device as Element runs it: matrix-js-sdk with its Rust crypto, driven over JSON
// lines. Requests come on stdin as {"id", "op", "args"}; each gets one answer on stdout,
// {"id", "ok": true, "result"} or {"id", "ok": false, "error"}; events are pushed as
// {"event": NAME, ...}. Logs go to stderr only: stdout carries nothing but protocol lines.
// The process ends when stdin closes (its parent is gone) or on the "stop" request.
//
// This module logs in and dispatches; rooms.mjs, trust.mjs and verification.mjs hold the
// operations, state.mjs what they share, sdk.mjs loads matrix-js-sdk (see there for the
// environment it reads).

import { createInterface } from "node:readline";

import { cryptoApi, sdk } from "./sdk.mjs"; // first: it sends the console to stderr
import { changed, crypto, emit, session, until } from "./state.mjs";
import * as rooms from "./rooms.mjs";
import * as trust from "./trust.mjs";
import * as verification from "./verification.mjs";

const { CryptoEvent } = cryptoApi;
const { ClientEvent, MatrixEventEvent, MemoryStore, RoomEvent } = sdk;

// Element's verification methods (SAS emoji, and QR in both directions).
const VERIFICATION_METHODS = ["m.sas.v1", "m.qr_code.show.v1", "m.reciprocate.v1"];

// ---- login ----------------------------------------------------------------------------------

async function uiaPassword(makeRequest) {
  // As Element's InteractiveAuth: try without auth, answer a 401 with the password.
  try {
    return await makeRequest(null);
  } catch (error) {
    if (error?.httpStatus !== 401 || !error?.data?.flows) throw error;
    return await makeRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: session.client.getUserId() },
      password: session.password,
      session: error.data.session,
    });
  }
}

async function login({
  homeserver,
  user_id: userId,
  password,
  device_name: deviceName,
  cross_sign: crossSign,
  reset_cross_signing: reset,
}) {
  if (session.client) throw new Error("already logged in");
  const timings = {};
  const started = Date.now();
  const anonymous = sdk.createClient({ baseUrl: homeserver });
  const made = await anonymous.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: userId },
    password,
    initial_device_display_name: deviceName || "matrix-js-sdk operator",
  });
  timings.login_ms = Date.now() - started;
  session.password = password;
  const client = sdk.createClient({
    baseUrl: homeserver,
    userId: made.user_id,
    deviceId: made.device_id,
    accessToken: made.access_token,
    store: new MemoryStore(),
    verificationMethods: VERIFICATION_METHODS,
  });
  session.client = client;
  let mark = Date.now();
  await client.initRustCrypto({ useIndexedDB: false });
  timings.crypto_init_ms = Date.now() - mark;
  watch(client);
  mark = Date.now();
  const prepared = until(
    () => ["PREPARED", "SYNCING"].includes(client.getSyncState()),
    60,
    "the first sync",
  );
  await client.startClient({ initialSyncLimit: 30, threadSupport: true }); // as Element
  await prepared;
  timings.first_sync_ms = Date.now() - mark;
  // As Element: a first login sets up cross-signing; a later one finds the identity and
  // leaves this device unsigned until another device verifies it (bootstrapping here would
  // replace the identity, since this device has none of its private keys); "reset" is
  // Element's "Reset cryptographic identity".
  let crossSigning = "none";
  if (crossSign || reset) {
    const existing = await crypto().userHasCrossSigningKeys(made.user_id, true);
    crossSigning = reset ? "reset" : existing ? "existing" : "new";
    if (crossSigning !== "existing") {
      mark = Date.now();
      await crypto().bootstrapCrossSigning({
        authUploadDeviceSigningKeys: uiaPassword,
        setupNewCrossSigning: Boolean(reset),
      });
      timings.bootstrap_ms = Date.now() - mark;
    }
  }
  timings.total_ms = Date.now() - started;
  return {
    user_id: made.user_id,
    device_id: made.device_id,
    master_key: await trust.masterKey({}),
    cross_signing: crossSigning,
    timings,
  };
}

function watch(client) {
  client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline) => {
    if (!room || toStartOfTimeline) return;
    rooms.recordTimeline(event, room);
    changed();
  });
  client.on(MatrixEventEvent.Decrypted, () => changed());
  client.on(ClientEvent.Sync, () => changed());
  client.on(RoomEvent.MyMembership, () => changed());
  client.on(CryptoEvent.VerificationRequestReceived, (request) => {
    const vid = verification.track(request);
    emit("verification_request", verification.describeRequest(vid, request));
  });
  client.on(CryptoEvent.UserTrustStatusChanged, (userId) => {
    emit("user_trust_changed", { user_id: userId });
    changed();
  });
  client.on(CryptoEvent.DevicesUpdated, () => changed());
}

// ---- dispatch -------------------------------------------------------------------------------

const operations = {
  login,
  whoami: async () => ({
    user_id: session.client.getUserId(),
    device_id: session.client.getDeviceId(),
  }),
  own_device_keys: async () => crypto().getOwnDeviceKeys(),
  invite: async ({ room_id: roomId, user_id: userId }) => {
    await session.client.invite(roomId, userId);
    return true;
  },
  create_room: rooms.createRoom,
  join: rooms.join,
  send: rooms.send,
  wait_message: rooms.waitMessage,
  messages: rooms.messages,
  wait_member: rooms.waitMember,
  master_key: trust.masterKey,
  device_status: trust.deviceStatus,
  user_status: trust.userStatus,
  wait_device_status: trust.waitDeviceStatus,
  wait_user_status: trust.waitUserStatus,
  user_devices: trust.userDevices,
  cross_sign_device: trust.crossSignDevice,
  set_device_verified: trust.setDeviceVerified,
  pin_identity: trust.pinIdentity,
  set_isolation: trust.setIsolation,
  set_blacklist_unverified: trust.setBlacklistUnverified,
  request_device_verification: verification.requestDeviceVerification,
  request_user_verification: verification.requestUserVerification,
  request_own_verification: verification.requestOwnVerification,
  wait_verification_request: verification.waitVerificationRequest,
  accept_verification: verification.acceptVerification,
  wait_sas: verification.waitSas,
  sas_confirm: verification.sasConfirm,
  sas_mismatch: verification.sasMismatch,
  cancel_verification: verification.cancelVerification,
  wait_verification: verification.waitVerification,
  stop: async () => {
    setImmediate(shutdown);
    return true;
  },
};

function answer(id, ok, payload) {
  const line = ok ? { id, ok, result: payload ?? null } : { id, ok, error: payload };
  process.stdout.write(JSON.stringify(line) + "\n");
}

function shutdown() {
  try {
    session.client?.stopClient();
  } finally {
    process.exit(0);
  }
}

const input = createInterface({ input: process.stdin });
input.on("line", async (line) => {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    answer(null, false, `not JSON: ${line.slice(0, 200)}`);
    return;
  }
  const operation = operations[request.op];
  if (!operation) {
    answer(request.id, false, `unknown op ${JSON.stringify(request.op)}`);
    return;
  }
  try {
    answer(request.id, true, await operation(request.args ?? {}));
  } catch (error) {
    console.error(`${request.op} failed`, error);
    const detail = error?.data?.error ?? error?.message ?? String(error);
    answer(request.id, false, `${request.op}: ${detail}`);
  }
});
input.on("close", shutdown); // the parent is gone
process.on("unhandledRejection", (error) => console.error("unhandled rejection", error));
emit("ready", { pid: process.pid });
