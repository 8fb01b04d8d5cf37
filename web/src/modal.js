// A confirmation modal on a native <dialog>: showModal() makes the rest of the page inert,
// Escape closes it (the "cancel" event), and focus goes back to where it was (or to what
// `returnFocus` finds, when that element was re-rendered meanwhile).

export function confirmInDialog(dialog, { text, returnFocus }) {
  const message = dialog.querySelector("#confirm-delete-text");
  const cancel = dialog.querySelector("#confirm-delete-cancel");
  const confirm = dialog.querySelector("#confirm-delete-confirm");
  const opener = document.activeElement;
  message.textContent = text;
  return new Promise((resolve) => {
    let confirmed = false;
    const onCancel = () => dialog.close();
    const onConfirm = () => {
      confirmed = true;
      dialog.close();
    };
    dialog.addEventListener(
      "close",
      () => {
        cancel.removeEventListener("click", onCancel);
        confirm.removeEventListener("click", onConfirm);
        const target = opener?.isConnected ? opener : returnFocus?.();
        target?.focus();
        resolve(confirmed);
      },
      { once: true },
    );
    cancel.addEventListener("click", onCancel);
    confirm.addEventListener("click", onConfirm);
    dialog.showModal();
    cancel.focus();
  });
}
