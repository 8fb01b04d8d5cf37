// The two Firestore listeners the page lives on: the balance and the caller's creations.
//
// The creations query carries the owner filter the security rules demand
// (terraform/firestore.rules): without `where("user_id", "==", uid)` the rules refuse the
// whole query, since it could return someone else's documents.
import {
  collection,
  doc,
  onSnapshot,
  orderBy,
  query,
  where,
} from "firebase/firestore";

export function ownCreations(db, uid) {
  return query(
    collection(db, "creations"),
    where("user_id", "==", uid),
    orderBy("created_at", "desc"),
  );
}

export function watchBalance(db, uid, { onValue, onError }) {
  return onSnapshot(
    doc(db, "users", uid),
    (snapshot) => onValue(snapshot.exists() ? (snapshot.get("tokens") ?? 0) : 0),
    onError,
  );
}

// onChange(creations, {fromServer}) with creations newest first, each {id, ...fields}.
export function watchCreations(db, uid, { onChange, onError }) {
  return onSnapshot(
    ownCreations(db, uid),
    { includeMetadataChanges: true },
    (snapshot) =>
      onChange(
        snapshot.docs.map((d) => ({ id: d.id, ...d.data() })),
        { fromServer: !snapshot.metadata.fromCache },
      ),
    onError,
  );
}
