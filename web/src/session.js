// Who the caller is, and their ID token for the API, in either mode.
//
// Dev: the uid comes from the address (?uid=alice); the dev server mints the token with the
// stack's signing key, and Firestore is the emulator, which trusts a mock token naming the
// same uid. Production: Firebase Auth signs the user in; the same ID token serves the API
// (Authorization: Bearer) and Firestore (the SDK sends it itself), so the rules' request.auth.uid
// and the API's caller are one user.
import { initializeApp } from "firebase/app";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import {
  GoogleAuthProvider,
  getAuth,
  onAuthStateChanged,
  signInWithPopup,
  signOut,
} from "firebase/auth";

const TOKEN_REFRESH_MARGIN_MS = 5 * 60 * 1000;

export function devUidFromAddress() {
  return new URLSearchParams(window.location.search).get("uid")?.trim() || null;
}

// Resolves to {uid, db, getToken, signOut?} once someone is signed in; `onSignedOut` is called
// (production only) while nobody is.
export async function openSession(config, { onSignedOut }) {
  return config.mode === "dev" ? devSession(config) : productionSession(config, onSignedOut);
}

async function devSession(config) {
  const uid = devUidFromAddress();
  if (!uid) return null;
  const app = initializeApp({ projectId: config.projectId, apiKey: "dev-no-key" });
  const db = getFirestore(app);
  const { host, port } = config.firestoreEmulator;
  connectFirestoreEmulator(db, host, port, { mockUserToken: { user_id: uid } });
  let cached = null;
  const getToken = async () => {
    if (cached && cached.expires - Date.now() > TOKEN_REFRESH_MARGIN_MS) return cached.token;
    const response = await fetch(`/dev/token?uid=${encodeURIComponent(uid)}`, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body?.error?.message ?? "the dev server refused the uid");
    cached = { token: body.token, expires: Date.now() + 55 * 60 * 1000 };
    return cached.token;
  };
  await getToken(); // a bad uid is reported now, not at the first click
  return { uid, db, getToken, mode: "dev" };
}

function productionSession(config, onSignedOut) {
  const app = initializeApp(config.firebase);
  const auth = getAuth(app);
  const db = getFirestore(app);
  return new Promise((resolve) => {
    onAuthStateChanged(auth, (user) => {
      if (user) {
        resolve({
          uid: user.uid,
          db,
          getToken: () => user.getIdToken(), // refreshed by the SDK when it nears expiry
          signOut: () => signOut(auth).then(() => window.location.reload()),
          mode: "production",
        });
      } else {
        onSignedOut(() => signInWithPopup(auth, new GoogleAuthProvider()));
      }
    });
  });
}
