// The rewards page: share or copy the referral link, and copy a code. Works without it.
document.addEventListener("click", async (event) => {
  const share = event.target.closest("[data-share-url]");
  if (share) {
    const url = share.dataset.shareUrl;
    if (navigator.share) {
      try {
        await navigator.share({ url, title: share.dataset.shareTitle || document.title });
        return;
      } catch (error) {
        if (error.name === "AbortError") return;
      }
    }
    await copied(share, url);
    return;
  }
  const copy = event.target.closest("[data-copy]");
  if (copy) await copied(copy, copy.dataset.copy);
});

async function copied(button, text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    return;
  }
  const status = button.parentElement.querySelector("[data-copied]");
  if (status) status.hidden = false;
}
