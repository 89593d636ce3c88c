// Cross-signing and trust as the js-sdk judges it, and Element's two key-sharing settings.

import { cryptoApi } from "./sdk.mjs";
import { crypto, poll, session } from "./state.mjs";

const { AllDevicesIsolationMode, OnlySignedDevicesIsolationMode } = cryptoApi;

export async function masterKey({ user_id: userId = null }) {
  // The key the homeserver publishes (a /keys/query), whether or not this device trusts it.
  const user = userId ?? session.client.getUserId();
  const answer = await session.client.downloadKeysForUsers([user]);
  const keys = Object.values(answer.master_keys?.[user]?.keys ?? {});
  return keys.length ? keys[0] : null;
}

export async function deviceStatus({ user_id: userId, device_id: deviceId }) {
  await crypto().getUserDeviceInfo([userId], true);
  const status = await crypto().getDeviceVerificationStatus(userId, deviceId);
  if (!status) return null;
  return {
    signed_by_owner: status.signedByOwner,
    cross_signing_verified: status.crossSigningVerified,
    locally_verified: status.localVerified,
    verified: status.isVerified(),
  };
}

function agrees(actual, expected) {
  return actual !== null && Object.entries(expected).every(([key, value]) => actual[key] === value);
}

export async function waitDeviceStatus({
  user_id: userId,
  device_id: deviceId,
  expected,
  timeout,
}) {
  return poll(
    async () => {
      const status = await deviceStatus({ user_id: userId, device_id: deviceId });
      return { ok: agrees(status, expected), value: status };
    },
    timeout,
    `${userId}'s device ${deviceId} to be ${JSON.stringify(expected)}`,
  );
}

export async function waitUserStatus({ user_id: userId, expected, timeout = 30 }) {
  return poll(
    async () => {
      const status = await userStatus({ user_id: userId });
      return { ok: agrees(status, expected), value: status };
    },
    timeout,
    `${userId} to be ${JSON.stringify(expected)}`,
  );
}

export async function userStatus({ user_id: userId }) {
  const hasKeys = await crypto().userHasCrossSigningKeys(userId, true);
  const status = await crypto().getUserVerificationStatus(userId);
  return {
    has_cross_signing_keys: hasKeys,
    cross_signing_verified: status.isCrossSigningVerified(),
    verified: status.isVerified(),
    was_cross_signing_verified: status.wasCrossSigningVerified(),
    needs_user_approval: status.needsUserApproval,
  };
}

export async function userDevices({ user_id: userId }) {
  const map = await crypto().getUserDeviceInfo([userId], true);
  const devices = map.get(userId) ?? new Map();
  return [...devices.values()].map((device) => ({
    device_id: device.deviceId,
    display_name: device.displayName ?? null,
    ed25519: device.getFingerprint(),
    curve25519: device.getIdentityKey(),
    verified: device.verified,
  }));
}

export async function crossSignDevice({ device_id: deviceId }) {
  await crypto().getUserDeviceInfo([session.client.getUserId()], true);
  await crypto().crossSignDevice(deviceId);
  return true;
}

export async function setIsolation({ only_signed: onlySigned }) {
  crypto().setDeviceIsolationMode(
    onlySigned ? new OnlySignedDevicesIsolationMode() : new AllDevicesIsolationMode(false),
  );
  return true;
}

export async function setBlacklistUnverified({ on }) {
  crypto().globalBlacklistUnverifiedDevices = Boolean(on);
  return true;
}

export async function setDeviceVerified({ user_id: userId, device_id: deviceId, verified = true }) {
  // Marks the device trusted on this device only, as comparing its key by hand once did.
  await crypto().getUserDeviceInfo([userId], true);
  await crypto().setDeviceVerified(userId, deviceId, verified);
  return true;
}

export async function pinIdentity({ user_id: userId }) {
  // Element's "OK" on "<user>'s identity was reset": accept the new identity.
  await crypto().pinCurrentUserIdentity(userId);
  return true;
}
