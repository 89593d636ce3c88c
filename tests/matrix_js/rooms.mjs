// Rooms and messages as Element sees them: what arrived, decrypted or not, with its shield.

import { cryptoApi, sdk } from "./sdk.mjs";
import { crypto, emit, nameOf, session, until } from "./state.mjs";

const { DecryptionFailureCode, EventShieldColour, EventShieldReason } = cryptoApi;
const { EventType } = sdk;

// A missing key may still arrive: such a failure counts only once it has lasted `settle`.
const UNKNOWN_SESSION = DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID;
const timelines = new Map(); // room id -> MatrixEvent[] in arrival order
const failingSince = new Map(); // event id -> ms when it was first seen undecryptable

export function recordTimeline(event, room) {
  const list = timelines.get(room.roomId) ?? [];
  if (!list.includes(event)) {
    list.push(event);
    emit("timeline", {
      room_id: room.roomId,
      event_id: event.getId(),
      sender: event.getSender(),
      type: event.getWireType(),
    });
  }
  timelines.set(room.roomId, list);
}

export async function joinedRoom(roomId, timeout = 30) {
  return until(
    () => {
      const room = session.client.getRoom(roomId);
      return room && room.getMyMembership() === "join" ? room : null;
    },
    timeout,
    `this device to be in ${roomId}`,
  );
}

export async function createRoom({ encrypted = true, invite = [], name = null }) {
  const options = { invite, preset: "private_chat" };
  if (name) options.name = name;
  if (encrypted) {
    options.initial_state = [
      { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
    ];
  }
  const { room_id: roomId } = await session.client.createRoom(options);
  await joinedRoom(roomId);
  if (encrypted) {
    await until(
      () => session.client.getRoom(roomId)?.hasEncryptionStateEvent(),
      30,
      `the encryption state of ${roomId}`,
    );
  }
  return roomId;
}

export async function join({ room_id: roomId }) {
  await session.client.joinRoom(roomId);
  await joinedRoom(roomId);
  return roomId;
}

export async function send({ room_id: roomId, text, thread_root: threadRoot = null }) {
  await joinedRoom(roomId);
  const body = { msgtype: "m.text", body: text };
  if (threadRoot) {
    // Element replies to the thread's latest event, in case a client shows no threads.
    const inThread = (timelines.get(roomId) ?? []).filter((e) => {
      const rel = relationOf(e);
      return rel.rel_type === "m.thread" && rel.event_id === threadRoot && remote(e);
    });
    const latest = inThread.length ? inThread[inThread.length - 1].getId() : threadRoot;
    body["m.relates_to"] = {
      rel_type: "m.thread",
      event_id: threadRoot,
      is_falling_back: true,
      "m.in_reply_to": { event_id: latest },
    };
  }
  const txnId = session.client.makeTxnId();
  try {
    const sent = await session.client.sendEvent(roomId, null, EventType.RoomMessage, body, txnId);
    return sent.event_id;
  } catch (error) {
    // The js-sdk races /send against /sync: when the remote echo of a thread reply comes first,
    // it matches the local echo (no longer pending) and then throws "not a local echo" at the
    // /send answer, though the homeserver has the event. /send is idempotent per transaction
    // id (client-server API), so asking again with the same id answers the same event id.
    if (!String(error?.message).includes("not a local echo")) throw error;
    const wireType = encryptedRoom(roomId) ? "m.room.encrypted" : EventType.RoomMessage;
    const path = `/rooms/${encodeURIComponent(roomId)}/send/${wireType}/${txnId}`;
    const again = await session.client.http.authedRequest(sdk.Method.Put, path, undefined, {});
    return again.event_id;
  }
}

// Whether the homeserver has the event (a local echo's id is not yet an event id).
function remote(event) {
  return event.getId()?.startsWith("$") ?? false;
}

function encryptedRoom(roomId) {
  return session.client.getRoom(roomId)?.hasEncryptionStateEvent() ?? false;
}

// The relation of an event; an encrypted event carries it in clear too, so it is known even
// when the event cannot be decrypted.
function relationOf(event) {
  const source = event.isDecryptionFailure() ? event.getWireContent() : event.getContent();
  return source?.["m.relates_to"] ?? {};
}

async function describeEvent(event) {
  const failure = event.decryptionFailureReason;
  const content = event.getContent();
  const relates = relationOf(event);
  let shieldColour = null;
  let shieldReason = null;
  if (event.isEncrypted() && !event.isDecryptionFailure()) {
    const info = await crypto().getEncryptionInfoForEvent(event);
    if (info) {
      shieldColour = nameOf(EventShieldColour, info.shieldColour);
      shieldReason = nameOf(EventShieldReason, info.shieldReason);
    }
  } else if (!event.isEncrypted() && encryptedRoom(event.getRoomId())) {
    // Element's red "Not encrypted" padlock on a clear message in an encrypted room.
    shieldColour = "RED";
    shieldReason = nameOf(EventShieldReason, EventShieldReason.SENT_IN_CLEAR);
  }
  return {
    event_id: event.getId(),
    room_id: event.getRoomId(),
    sender: event.getSender(),
    sender_device: event.getWireContent()?.device_id ?? null,
    type: event.isDecryptionFailure() ? event.getWireType() : event.getType(),
    body: event.isDecryptionFailure() ? null : (content.body ?? null),
    content: event.isDecryptionFailure() ? null : content,
    encrypted: event.isEncrypted(),
    decrypted: event.isEncrypted() && !event.isDecryptionFailure(),
    decryption_error: event.isDecryptionFailure() ? (failure ?? "UNKNOWN_ERROR") : null,
    shield_colour: shieldColour,
    shield_reason: shieldReason,
    thread_root: relates.rel_type === "m.thread" ? relates.event_id : null,
    reply_to: relates["m.in_reply_to"]?.event_id ?? null,
    // What a client sees before decrypting, and what Element files the event by (the
    // js-sdk's threadRootId reads the relation from the wire content).
    clear_relation: event.getWireContent()?.["m.relates_to"] ?? null,
  };
}

function matches(event, filter) {
  if (event.isBeingDecrypted() || event.isSending()) return false;
  if (filter.sender && event.getSender() !== filter.sender) return false;
  if (filter.exclude && filter.exclude.includes(event.getId())) return false;
  const relates = relationOf(event);
  if (filter.reply_to && relates["m.in_reply_to"]?.event_id !== filter.reply_to) return false;
  const inThread = relates.rel_type === "m.thread" && relates.event_id === filter.thread_root;
  if (filter.thread_root && !inThread) return false;
  if (event.isDecryptionFailure()) {
    if (!filter.include_undecryptable || filter.contains) return false;
    const id = event.getId();
    if (!failingSince.has(id)) failingSince.set(id, Date.now());
    // A missing key may still arrive: such a failure counts once it has lasted `settle`.
    if (event.decryptionFailureReason === UNKNOWN_SESSION) {
      return Date.now() - failingSince.get(id) >= (filter.settle ?? 3) * 1000;
    }
    return true;
  }
  if (event.getType() !== (filter.type ?? "m.room.message")) return false;
  return !filter.contains || (event.getContent().body ?? "").includes(filter.contains);
}

export async function waitMessage({ room_id: roomId, timeout = 30, ...filter }) {
  const event = await until(
    () => (timelines.get(roomId) ?? []).find((e) => remote(e) && matches(e, filter)),
    timeout,
    `a message in ${roomId} matching ${JSON.stringify(filter)}`,
  );
  return describeEvent(event);
}

export async function messages({ room_id: roomId }) {
  const out = [];
  for (const event of timelines.get(roomId) ?? []) {
    if (event.getType() === "m.room.message" || event.isDecryptionFailure()) {
      out.push(await describeEvent(event));
    }
  }
  return out;
}

export async function waitMember({
  room_id: roomId,
  user_id: userId,
  membership = "join",
  timeout,
}) {
  await until(
    () => session.client.getRoom(roomId)?.getMember(userId)?.membership === membership,
    timeout,
    `${userId} to be '${membership}' in ${roomId}`,
  );
  return true;
}
