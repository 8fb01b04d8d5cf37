// Dev mode only: `window.draftsDev` in the browser's console holds the page's own Firestore
// instance (signed in to the emulator as the page's uid) and the SDK calls to try the rules
// by hand, e.g. `await draftsDev.firestore.getDocs(draftsDev.firestore.collection(draftsDev.db,
// "creations"))` is refused (no owner filter). The browser tests use it the same way.
import {
  addDoc,
  collection,
  deleteDoc,
  doc,
  getDoc,
  getDocs,
  query,
  setDoc,
  updateDoc,
  where,
} from "firebase/firestore";

export function exposeForConsole(session) {
  window.draftsDev = {
    db: session.db,
    uid: session.uid,
    firestore: { addDoc, collection, deleteDoc, doc, getDoc, getDocs, query, setDoc, updateDoc, where },
  };
}
