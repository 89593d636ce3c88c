// Interactive (emoji) verification as Element runs it: requests made or accepted here, SAS
// started once the other side is ready, and the emojis shown without another step.

import { cryptoApi } from "./sdk.mjs";
import { changed, crypto, emit, nameOf, until } from "./state.mjs";
import { joinedRoom } from "./rooms.mjs";

const { VerificationPhase, VerificationRequestEvent, VerifierEvent } = cryptoApi;
const requests = new Map(); // vid -> VerificationRequest
let nextVid = 1;

export function track(request) {
  for (const [vid, known] of requests) if (known === request) return vid;
  const vid = `v${nextVid++}`;
  requests.set(vid, request);
  request.on(VerificationRequestEvent.Change, () => {
    // As Element's verification panel: once this side is in the request (it made or accepted
    // it) and either side has started SAS, run it, so the emojis show without another step.
    if (request.verifier && (request.initiatedByMe || request.acceptedHere)) {
      engage(vid, request.verifier);
    }
    emit("verification_changed", describeRequest(vid, request));
    changed();
  });
  return vid;
}

function engage(vid, verifier) {
  if (verifier.engaged) return;
  verifier.engaged = true;
  verifier.on(VerifierEvent.ShowSas, () => changed());
  verifier.on(VerifierEvent.Cancel, () => changed());
  verifier.verify().then(
    () => changed(),
    (error) => {
      console.warn(`verification ${vid} ended`, error?.message ?? error);
      changed();
    },
  );
}

export function describeRequest(vid, request) {
  return {
    vid,
    other_user: request.otherUserId,
    other_device: request.otherDeviceId ?? null,
    room_id: request.roomId ?? null,
    initiated_by_me: request.initiatedByMe,
    phase: nameOf(VerificationPhase, request.phase)?.toLowerCase() ?? null,
    chosen_method: request.chosenMethod ?? null,
    cancellation_code: request.cancellationCode ?? null,
    cancelled_by: request.cancellingUserId ?? null,
  };
}

function requestOf(vid) {
  const request = requests.get(vid);
  if (!request) throw new Error(`no verification ${vid}`);
  return request;
}

export async function requestDeviceVerification({ user_id: userId, device_id: deviceId, timeout }) {
  // The Rust crypto knows the devices of users it tracks: those it shares a room with.
  await until(
    () => crypto().getDeviceVerificationStatus(userId, deviceId),
    timeout,
    `${userId}'s device ${deviceId} to be known (share a room with them first)`,
  );
  return track(await crypto().requestDeviceVerification(userId, deviceId));
}

export async function requestUserVerification({ user_id: userId, room_id: roomId }) {
  await joinedRoom(roomId);
  await crypto().getUserDeviceInfo([userId], true);
  return track(await crypto().requestVerificationDM(userId, roomId));
}

export async function requestOwnVerification() {
  // As a new Element session's "Verify with another device".
  return track(await crypto().requestOwnUserVerification());
}

export async function acceptVerification({ vid }) {
  const request = requestOf(vid);
  request.acceptedHere = true;
  await request.accept();
  return describeRequest(vid, request);
}

export async function waitVerificationRequest({ sender: from = null, timeout = 30 }) {
  const vid = await until(
    () => {
      for (const [vid, request] of requests) {
        if (!request.initiatedByMe && (!from || request.otherUserId === from)) return vid;
      }
      return null;
    },
    timeout,
    `a verification request${from ? ` from ${from}` : ""}`,
  );
  return describeRequest(vid, requestOf(vid));
}

export async function waitSas({ vid, start = null, timeout = 30 }) {
  const request = requestOf(vid);
  const starter = start ?? request.initiatedByMe;
  let starting = null;
  const verifier = await until(
    () => {
      if (request.phase === VerificationPhase.Cancelled) {
        throw new Error(`verification ${vid} was cancelled: ${request.cancellationCode}`);
      }
      if (request.verifier) return request.verifier;
      if (starter && !starting && request.phase === VerificationPhase.Ready) {
        // As Element's "Verify by emoji" once the other side is ready.
        starting = request.startVerification("m.sas.v1");
        return starting;
      }
      return null;
    },
    timeout,
    `SAS to start in ${vid}`,
  );
  engage(vid, verifier);
  const callbacks = await until(
    () => {
      if (verifier.hasBeenCancelled || request.phase === VerificationPhase.Cancelled) {
        throw new Error(`verification ${vid} was cancelled: ${request.cancellationCode}`);
      }
      return verifier.getShowSasCallbacks();
    },
    timeout,
    `the emojis of ${vid}`,
  );
  return (callbacks.sas.emoji ?? []).map(([emoji, name]) => [emoji, name]);
}

function sasCallbacks(vid) {
  const callbacks = requestOf(vid).verifier?.getShowSasCallbacks();
  if (!callbacks) throw new Error(`verification ${vid} shows no emojis yet: call wait_sas first`);
  return callbacks;
}

export async function sasConfirm({ vid }) {
  await sasCallbacks(vid).confirm();
  return true;
}

export async function sasMismatch({ vid }) {
  sasCallbacks(vid).mismatch();
  return true;
}

export async function cancelVerification({ vid }) {
  await requestOf(vid).cancel();
  return true;
}

export async function waitVerification({ vid, timeout = 60 }) {
  const request = requestOf(vid);
  await until(
    () => [VerificationPhase.Done, VerificationPhase.Cancelled].includes(request.phase),
    timeout,
    `verification ${vid} to finish`,
  );
  return describeRequest(vid, request);
}
