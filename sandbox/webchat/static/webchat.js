// The sandbox web chat. It talks only to the sandbox's public control API (shapes in the
// docstring of sandbox/control.py):
//   GET  /sandbox/users                the users to act as
//   GET  /sandbox/chats?user_id=U      the chats of a user (private chat, groups, forums)
//   GET  /sandbox/chats/C/messages     the chat as its users see it now, polled every 400 ms
//   POST /sandbox/messages             the user sends text, a contact, or a photo (multipart)
//   POST /sandbox/press                the user presses an inline button
// Message text only ever enters the page as text nodes; formatting comes from Telegram's
// entities, turned into elements here (the API's ready-made "html" is deliberately unused).
"use strict";

(() => {
  const POLL_MS = 400;
  const DIRECTORY_MS = 2000;

  const state = {
    users: [],
    userId: null,
    chats: [],
    chatId: null,
    threadId: null, // forum topic shown, null = all / General
    rendered: new Map(), // message_id -> {sig, node}
    lastMessages: [],
    hiddenKeyboard: null, // key of the reply keyboard the user collapsed
    photo: null,
    pollTimer: null,
    pollSeq: 0,
    stickToBottom: true,
    botName: null,
    requestSeq: 0,
    appliedSeq: 0,
    pressed: new Set(), // callback_query_ids whose answer is still to be shown
  };

  const $ = (id) => document.getElementById(id);
  const dom = {
    userSelect: $("user-select"),
    chatList: $("chat-list"),
    sidebarHint: $("sidebar-hint"),
    chatTitle: $("chat-title"),
    chatSub: $("chat-sub"),
    chatAvatar: $("chat-avatar"),
    topicSelect: $("topic-select"),
    banner: $("banner"),
    messages: $("messages"),
    replyKeyboard: $("reply-keyboard"),
    keyboardToggle: $("keyboard-toggle"),
    composer: $("composer"),
    input: $("message-input"),
    send: $("send-button"),
    photoInput: $("photo-input"),
    attachment: $("attachment"),
    attachmentThumb: $("attachment-thumb"),
    attachmentName: $("attachment-name"),
    attachmentRemove: $("attachment-remove"),
    toast: $("toast"),
  };

  // ---------------------------------------------------------------- small helpers

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function listOf(data, ...keys) {
    if (Array.isArray(data)) return data;
    if (data && typeof data === "object") {
      for (const key of keys) {
        if (Array.isArray(data[key])) return data[key];
      }
    }
    return [];
  }

  function safeUrl(raw) {
    if (typeof raw !== "string" || raw === "") return null;
    try {
      const url = new URL(raw, window.location.href);
      if (["http:", "https:", "mailto:", "tel:", "tg:"].includes(url.protocol)) return url.href;
    } catch (_err) {
      // not a URL at all
    }
    return null;
  }

  function sameOriginUrl(raw) {
    const url = safeUrl(raw);
    if (!url) return null;
    return new URL(url).origin === window.location.origin ? url : null;
  }

  let toastTimer = null;
  function toast(message, isError) {
    dom.toast.textContent = message;
    dom.toast.classList.toggle("error", Boolean(isError));
    dom.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      dom.toast.hidden = true;
    }, isError ? 6000 : 3500);
  }

  function banner(message) {
    dom.banner.textContent = message || "";
    dom.banner.hidden = !message;
  }

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    const raw = await response.text();
    let data = null;
    try {
      data = raw ? JSON.parse(raw) : null;
    } catch (_err) {
      data = raw;
    }
    if (!response.ok) {
      const detail =
        (data && typeof data === "object" && (data.description || data.error || data.message)) ||
        (typeof data === "string" && data) ||
        response.statusText;
      const error = new Error(`${response.status}: ${detail}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function userLabel(user) {
    if (!user) return "";
    const name = [user.first_name, user.last_name].filter(Boolean).join(" ") || `user ${user.id}`;
    return user.username ? `${name} (@${user.username})` : name;
  }

  function initials(text) {
    const words = String(text || "?").trim().split(/\s+/).filter(Boolean);
    return (words.slice(0, 2).map((w) => Array.from(w)[0]).join("") || "?").toUpperCase();
  }

  function formatTime(unix) {
    if (!unix) return "";
    const d = new Date(unix * 1000);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  // ---------------------------------------------------------------- URL hash (deep links)

  function readHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const num = (key) => (params.get(key) && /^-?\d+$/.test(params.get(key)) ? Number(params.get(key)) : null);
    return { user: num("user"), chat: num("chat"), thread: num("thread") };
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.userId !== null) params.set("user", state.userId);
    if (state.chatId !== null) params.set("chat", state.chatId);
    if (state.threadId !== null) params.set("thread", state.threadId);
    const hash = `#${params}`;
    if (window.location.hash !== hash) history.replaceState(null, "", hash);
  }

  // ---------------------------------------------------------------- entities → DOM

  const ENTITY_TAGS = {
    bold: "strong",
    italic: "em",
    underline: "u",
    strikethrough: "s",
    code: "code",
    blockquote: "blockquote",
    expandable_blockquote: "blockquote",
  };

  function entityElement(entity, covered) {
    switch (entity.type) {
      case "pre": {
        const pre = h("pre", { dataset: entity.language ? { language: entity.language } : {} });
        const code = h("code");
        pre.append(code);
        return { outer: pre, inner: code };
      }
      case "text_link":
      case "url":
      case "email":
      case "phone_number": {
        let target = entity.url;
        if (entity.type === "url") target = /^[a-z][a-z0-9+.-]*:/i.test(covered) ? covered : `http://${covered}`;
        if (entity.type === "email") target = `mailto:${covered}`;
        if (entity.type === "phone_number") target = `tel:${covered.replace(/[^\d+]/g, "")}`;
        const href = safeUrl(target);
        if (!href) {
          const span = h("span", { class: "mention" });
          return { outer: span, inner: span };
        }
        const a = h("a", { href, target: "_blank", rel: "noopener noreferrer", title: href });
        return { outer: a, inner: a };
      }
      case "spoiler": {
        const span = h("span", {
          class: "spoiler",
          title: "Spoiler: click to reveal",
          onclick: (event) => event.currentTarget.classList.add("revealed"),
        });
        return { outer: span, inner: span };
      }
      case "mention":
      case "text_mention":
      case "hashtag":
      case "cashtag": {
        const cls = entity.type.endsWith("mention") ? "mention" : "hashtag";
        const span = h("span", { class: cls });
        if (entity.user) span.title = userLabel(entity.user);
        return { outer: span, inner: span };
      }
      case "bot_command": {
        const span = h("span", {
          class: "command",
          title: "Send this command",
          onclick: () => sendText(covered),
        });
        return { outer: span, inner: span };
      }
      default: {
        const tag = ENTITY_TAGS[entity.type] || "span";
        const node = h(tag, entity.type === "custom_emoji" ? { class: "custom-emoji" } : {});
        return { outer: node, inner: node };
      }
    }
  }

  // Over the same stretch of text, blocks wrap links, which wrap styles, which wrap code.
  const NESTING = { blockquote: 0, expandable_blockquote: 0, pre: 1, text_link: 2, url: 2, code: 9 };
  const rank = (entity) => NESTING[entity.type] ?? 5;

  function byStart(a, b) {
    return a.offset - b.offset || b.end - a.end || rank(a) - rank(b);
  }

  // Entities nest in Telegram, but a bot can send overlapping ones; an entity that runs past
  // its parent is split there and carries on after it, so no text is lost or repeated.
  function renderRange(parent, text, entities, start, end) {
    let pos = start;
    let pending = entities.slice().sort(byStart);
    while (pending.length) {
      const entity = pending.shift();
      if (entity.offset < pos) continue;
      if (entity.offset > pos) parent.append(text.slice(pos, entity.offset));
      const stop = Math.min(entity.end, end);
      const inside = [];
      const rest = [];
      for (const other of pending) {
        if (other.offset < stop) {
          inside.push({ ...other, end: Math.min(other.end, stop) });
          if (other.end > stop) rest.push({ ...other, offset: stop });
        } else {
          rest.push(other);
        }
      }
      const { outer, inner } = entityElement(entity, text.slice(entity.offset, stop));
      renderRange(inner, text, inside, entity.offset, stop);
      parent.append(outer);
      pos = stop;
      pending = rest.sort(byStart);
    }
    if (pos < end) parent.append(text.slice(pos, end));
  }

  function formattedText(text, entities) {
    const node = h("div", { class: "text", dir: "auto" });
    let valid = (entities || [])
      .filter((e) => e && Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .map((e) => ({ ...e, end: Math.min(e.offset + e.length, text.length) }))
      .filter((e) => e.offset < e.end);
    // <pre><code class="language-x"> may arrive as a pre plus a code over the same text:
    // that is one code block in language x, as Telegram shows it.
    const pres = valid.filter((e) => e.type === "pre");
    valid = valid.filter((e) => {
      if (e.type !== "code") return true;
      const pre = pres.find((p) => p.offset === e.offset && p.end === e.end);
      if (pre && e.language && !pre.language) pre.language = e.language;
      return !pre;
    });
    // JavaScript strings index UTF-16 code units, which is exactly what Telegram's offsets count.
    renderRange(node, text, valid, 0, text.length);
    return node;
  }

  // ---------------------------------------------------------------- messages → DOM

  function messageThread(message) {
    return message.message_thread_id ?? null;
  }

  function isOwn(message) {
    const from = message.from || {};
    if (from.id !== undefined && state.userId !== null) return Number(from.id) === state.userId;
    return message.outgoing === false; // the control API's "outgoing" means sent by the bot
  }

  // The control API gives a photo as {file_id, url, width, height}, the url on this origin.
  function photoUrl(message) {
    return message.photo ? sameOriginUrl(message.photo.url) : null;
  }

  function documentLink(message) {
    const doc = message.document;
    if (!doc) return null;
    const url = sameOriginUrl(doc.url);
    const name = doc.file_name || "document";
    return h(
      "div",
      { class: "doc" },
      h("span", { class: "doc-icon", "aria-hidden": "true", text: "FILE" }),
      url ? h("a", { href: url, target: "_blank", rel: "noopener", download: name, text: name }) : name,
    );
  }

  function serviceText(message) {
    const service = message.service;
    if (service && typeof service === "object") {
      const name = service.name ? ` “${service.name}”` : "";
      switch (service.type) {
        case "forum_topic_created": return `Topic${name} created`;
        case "forum_topic_edited": return `Topic renamed to${name}`;
        case "forum_topic_closed": return "Topic closed";
        case "forum_topic_reopened": return "Topic reopened";
        default: return String(service.type || "service message").replace(/_/g, " ");
      }
    }
    return null;
  }

  function inlineKeyboard(message) {
    const rows = message.reply_markup && message.reply_markup.inline_keyboard;
    if (!Array.isArray(rows) || rows.length === 0) return null;
    const box = h("div", { class: "ikb", role: "group", "aria-label": "Inline keyboard" });
    for (const row of rows) {
      const line = h("div", { class: "ikb-row" });
      for (const button of row || []) line.append(inlineButton(message, button));
      box.append(line);
    }
    return box;
  }

  function inlineButton(message, button) {
    const label = button.text || "";
    if (button.url) {
      const href = safeUrl(button.url);
      return h("a", {
        class: "ikb-btn url",
        href: href || undefined,
        target: "_blank",
        rel: "noopener noreferrer",
        title: button.url,
        text: label,
      });
    }
    if (button.callback_data !== undefined) {
      return h("button", {
        type: "button",
        class: "ikb-btn",
        text: label,
        dataset: { callback: button.callback_data },
        onclick: (event) => pressInline(message, button, event.currentTarget),
      });
    }
    if (button.copy_text && button.copy_text.text !== undefined) {
      return h("button", {
        type: "button",
        class: "ikb-btn",
        text: label,
        onclick: () => {
          navigator.clipboard?.writeText(button.copy_text.text).catch(() => {});
          toast("Copied to clipboard");
        },
      });
    }
    const kind = Object.keys(button).find((k) => k !== "text") || "unknown";
    return h("button", {
      type: "button",
      class: "ikb-btn",
      text: label,
      disabled: true,
      title: `${kind} buttons do nothing in the sandbox`,
    });
  }

  function messageSignature(message) {
    return JSON.stringify(message);
  }

  function renderMessage(message) {
    const service = serviceText(message);
    if (service) {
      return h("div", { class: "msg service", dataset: { messageId: message.message_id } }, service);
    }
    const own = isOwn(message);
    const wrapper = h("div", {
      class: `msg ${own ? "out" : "in"}`,
      dataset: { messageId: message.message_id },
    });
    const photo = photoUrl(message);
    const bubble = h("div", { class: `bubble${photo ? " has-photo" : ""}` });

    const chat = currentChat();
    const from = message.from || {};
    if (!own && chat && chat.type !== "private" && (from.first_name || from.username)) {
      bubble.append(h("div", { class: "sender", text: from.first_name || from.username }));
    }
    const quotedId = message.reply_to_message_id ?? (message.reply_to_message && message.reply_to_message.message_id);
    if (quotedId !== undefined && quotedId !== null && quotedId !== messageThread(message)) {
      const quoted =
        state.lastMessages.find((m) => m.message_id === quotedId) || message.reply_to_message || {};
      const quotedText = quoted.text || quoted.caption || (quoted.photo ? "Photo" : `message ${quotedId}`);
      bubble.append(h("div", { class: "reply-quote", text: quotedText }));
    }
    if (message.forwarded) bubble.append(h("div", { class: "sender", text: "Forwarded message" }));
    if (photo) {
      const size = message.photo;
      bubble.append(
        h("img", {
          class: "photo",
          src: photo,
          alt: message.caption || "photo",
          width: size.width ? String(size.width) : undefined,
          height: size.height ? String(size.height) : undefined,
        }),
      );
    }
    const doc = documentLink(message);
    if (doc) bubble.append(doc);
    if (message.contact) {
      const c = message.contact;
      bubble.append(h("div", { class: "text", text: `Contact: ${[c.first_name, c.last_name].filter(Boolean).join(" ")}\n${c.phone_number || ""}` }));
    }

    const meta = h("span", { class: "meta" });
    if (message.edit_date || message.edited) meta.append(h("span", { class: "edited", text: "edited" }));
    meta.append(formatTime(message.date));

    let text = null;
    let entities = null;
    if (typeof message.text === "string") {
      text = message.text;
      entities = message.entities;
    } else if (typeof message.caption === "string") {
      text = message.caption;
      entities = message.caption_entities || message.entities;
    }
    if (text !== null) {
      const body = formattedText(text, entities);
      body.append(meta);
      bubble.append(body);
    } else {
      bubble.append(h("div", { class: "text" }, meta));
    }
    wrapper.append(bubble);
    const keyboard = inlineKeyboard(message);
    if (keyboard) wrapper.append(keyboard);
    return wrapper;
  }

  // ---------------------------------------------------------------- reply keyboard

  // The sandbox keeps the reply keyboard per chat, as a Telegram client does: the last one the
  // bot sent stays until the bot removes it. Its JSON is its identity for hiding it locally.
  function currentReplyMarkup(payload) {
    const kb = payload && payload.reply_keyboard;
    return kb && Array.isArray(kb.keyboard) ? { markup: kb, key: JSON.stringify(kb) } : null;
  }

  function renderReplyKeyboard(current) {
    const box = dom.replyKeyboard;
    const key = current ? current.key : "";
    if (box.dataset.key !== key) {
      box.dataset.key = key;
      box.replaceChildren();
      if (current) {
        for (const row of current.markup.keyboard) {
          const line = h("div", { class: "rkb-row" });
          for (const button of row || []) {
            const label = typeof button === "string" ? button : button.text || "";
            line.append(
              h("button", {
                type: "button",
                class: "rkb-btn",
                text: label,
                onclick: () => {
                  if (current.markup.one_time_keyboard) state.hiddenKeyboard = current.key;
                  if (button.request_contact) sendContact();
                  else sendText(label);
                },
              }),
            );
          }
          box.append(line);
        }
      }
      dom.input.placeholder = (current && current.markup.input_field_placeholder) || "Message";
    }
    const hidden = !current || state.hiddenKeyboard === current.key;
    box.hidden = hidden;
    dom.keyboardToggle.hidden = !current;
    dom.keyboardToggle.classList.toggle("active", Boolean(current) && !hidden);
  }

  dom.keyboardToggle.addEventListener("click", () => {
    const current = currentReplyMarkup(state.lastPayload);
    if (!current) return;
    state.hiddenKeyboard = state.hiddenKeyboard === current.key ? null : current.key;
    renderReplyKeyboard(current);
  });

  // ---------------------------------------------------------------- directory: users, chats

  function currentChat() {
    return state.chats.find((c) => Number(c.id) === state.chatId) || null;
  }

  // A private chat is the user's chat with the bot; the control API titles it with the user's
  // name, so the page names it after the bot instead, once a bot message shows the bot's name.
  function chatTitle(chat) {
    if (!chat) return "";
    if (chat.type === "private") return state.botName || "Bot";
    return chat.title || `chat ${chat.id}`;
  }

  function chatSubtitle(chat) {
    if (!chat) return "";
    if (chat.type === "private") return "private chat with the bot";
    if (chat.is_forum) return "forum supergroup";
    return chat.type || "group";
  }

  async function loadUsers() {
    const data = await api("GET", "/sandbox/users");
    const users = listOf(data, "users");
    const sig = JSON.stringify(users);
    if (sig === state.usersSig) return;
    state.usersSig = sig;
    state.users = users;
    const select = dom.userSelect;
    const keep = state.userId;
    select.replaceChildren(h("option", { value: "", text: "— pick a user —" }));
    for (const user of users) {
      select.append(h("option", { value: String(user.id), text: `${userLabel(user)} · ${user.id}` }));
    }
    select.value = keep !== null && users.some((u) => Number(u.id) === keep) ? String(keep) : "";
    dom.sidebarHint.hidden = users.length > 0;
  }

  async function loadChats() {
    if (state.userId === null) {
      state.chats = [];
      renderChatList();
      return;
    }
    const data = await api("GET", `/sandbox/chats?user_id=${encodeURIComponent(state.userId)}`);
    const chats = listOf(data, "chats");
    const sig = JSON.stringify(chats);
    if (sig === state.chatsSig) return;
    state.chatsSig = sig;
    state.chats = chats;
    renderChatList();
    if (state.chatId === null || !currentChat()) {
      const privateChat = chats.find((c) => c.type === "private") || chats[0];
      if (privateChat) selectChat(Number(privateChat.id));
    } else {
      renderChatHeader();
    }
  }

  function renderChatList() {
    dom.chatList.replaceChildren();
    for (const chat of state.chats) {
      const title = chatTitle(chat);
      const item = h(
        "li",
        {
          class: "chat-item",
          role: "option",
          "aria-selected": String(Number(chat.id) === state.chatId),
          dataset: { chatId: chat.id },
          onclick: () => selectChat(Number(chat.id)),
        },
        h("div", { class: "avatar", "aria-hidden": "true", text: initials(title) }),
        h(
          "div",
          { class: "chat-item-text" },
          h("div", { class: "chat-item-title", text: title }),
          h("div", { class: "chat-item-sub", text: chatSubtitle(chat) }),
        ),
      );
      dom.chatList.append(item);
    }
  }

  function topicsOf(chat, messages) {
    const topics = new Map();
    for (const topic of listOf(chat && chat.topics, "topics")) {
      const id = topic.message_thread_id ?? topic.id;
      if (id === undefined) continue;
      topics.set(Number(id), `${topic.name || `topic ${id}`}${topic.closed ? " (closed)" : ""}`);
    }
    for (const message of messages) {
      if (message.message_thread_id === undefined) continue;
      if (message.service && message.service.type === "forum_topic_created") {
        const id = Number(message.message_thread_id);
        if (!topics.has(id)) topics.set(id, message.service.name || `topic ${id}`);
      } else if (message.is_topic_message && message.message_thread_id !== undefined) {
        const id = Number(message.message_thread_id);
        if (!topics.has(id)) topics.set(id, `topic ${id}`);
      }
    }
    return topics;
  }

  const ACTIONS = {
    typing: "typing…",
    upload_photo: "sending a photo…",
    upload_document: "sending a file…",
    upload_video: "sending a video…",
    record_voice: "recording a voice message…",
    choose_sticker: "choosing a sticker…",
    find_location: "finding a location…",
  };

  function chatActionText(payload) {
    const action = payload && payload.chat_action;
    if (!action || !action.action) return "";
    if (action.until && action.until * 1000 < Date.now()) return "";
    const who = currentChat() && currentChat().type === "private" ? "" : `${state.botName || "bot"} is `;
    return `${who}${ACTIONS[action.action] || action.action.replace(/_/g, " ") + "…"}`;
  }

  function renderChatHeader() {
    const chat = currentChat();
    const title = chat ? chatTitle(chat) : "No chat selected";
    dom.chatTitle.textContent = title;
    const user = state.users.find((u) => Number(u.id) === state.userId);
    const action = chatActionText(state.lastPayload);
    dom.chatSub.textContent = chat ? action || `${chatSubtitle(chat)} · seen as ${userLabel(user)}` : "";
    dom.chatSub.classList.toggle("action", Boolean(action));
    dom.chatAvatar.textContent = chat ? initials(title) : "";
    const topics = chat && chat.is_forum ? topicsOf(chat, state.lastMessages) : new Map();
    const select = dom.topicSelect;
    const sig = JSON.stringify([...topics]);
    if (select.dataset.sig !== sig) {
      select.dataset.sig = sig;
      select.replaceChildren(h("option", { value: "", text: "All topics (General)" }));
      for (const [id, name] of topics) select.append(h("option", { value: String(id), text: name }));
    }
    select.hidden = !(chat && chat.is_forum);
    select.value = state.threadId === null ? "" : String(state.threadId);
    updateSendButton();
  }

  function selectUser(userId) {
    state.userId = userId;
    state.chatId = null;
    state.threadId = null;
    state.chats = [];
    state.chatsSig = null;
    dom.userSelect.value = userId === null ? "" : String(userId);
    resetMessages();
    renderChatList();
    renderChatHeader();
    writeHash();
    loadChats().catch(reportError);
  }

  function selectChat(chatId) {
    if (state.chatId === chatId) return;
    state.chatId = chatId;
    state.threadId = null;
    resetMessages();
    renderChatList();
    renderChatHeader();
    writeHash();
    schedulePoll(0);
  }

  dom.userSelect.addEventListener("change", () => {
    const value = dom.userSelect.value;
    selectUser(value === "" ? null : Number(value));
  });

  dom.topicSelect.addEventListener("change", () => {
    const value = dom.topicSelect.value;
    state.threadId = value === "" ? null : Number(value);
    writeHash();
    resetMessages();
    schedulePoll(0);
  });

  // ---------------------------------------------------------------- polling the chat

  function resetMessages() {
    state.rendered.clear();
    state.lastMessages = [];
    state.lastPayload = null;
    state.hiddenKeyboard = null;
    state.stickToBottom = true;
    state.pollSeq += 1;
    dom.messages.replaceChildren();
    renderReplyKeyboard(null);
  }

  function visible(message) {
    if (state.threadId === null) return true;
    return messageThread(message) === state.threadId;
  }

  function applyMessages(payload) {
    const all = listOf(payload, "messages");
    state.lastPayload = payload;
    state.lastMessages = all;
    const fromBot = all.find((m) => m.from && m.from.is_bot && m.from.first_name);
    if (fromBot && state.botName !== fromBot.from.first_name) {
      state.botName = fromBot.from.first_name;
      renderChatList();
    }
    showCallbackAnswers(payload);
    const messages = all.filter(visible);
    const box = dom.messages;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    const seen = new Set();
    let previous = null;
    for (const message of messages) {
      const id = String(message.message_id);
      seen.add(id);
      const sig = messageSignature(message);
      let entry = state.rendered.get(id);
      if (!entry || entry.sig !== sig) {
        const node = renderMessage(message);
        if (entry) entry.node.replaceWith(node);
        entry = { sig, node };
        state.rendered.set(id, entry);
      }
      const expectedPosition = previous ? previous.nextSibling : box.firstChild;
      if (entry.node !== expectedPosition) box.insertBefore(entry.node, expectedPosition);
      previous = entry.node;
    }
    for (const [id, entry] of state.rendered) {
      if (!seen.has(id)) {
        entry.node.remove();
        state.rendered.delete(id);
      }
    }
    const empty = box.querySelector(".empty");
    if (messages.length === 0 && !empty) {
      box.append(h("div", { class: "empty", text: "No messages here yet" }));
    } else if (messages.length > 0 && empty) {
      empty.remove();
    }
    if (nearBottom || state.stickToBottom) {
      box.scrollTop = box.scrollHeight;
      state.stickToBottom = false;
    }
    renderReplyKeyboard(currentReplyMarkup(payload));
    renderChatHeader();
  }

  // What the bot answered to a button this page pressed (answerCallbackQuery's text), shown
  // as Telegram does: a short toast, or an alert the user has to dismiss.
  function showCallbackAnswers(payload) {
    for (const answer of listOf(payload && payload.callback_answers)) {
      if (!answer.answered || !state.pressed.has(answer.callback_query_id)) continue;
      state.pressed.delete(answer.callback_query_id);
      if (!answer.text) continue;
      if (answer.show_alert) window.alert(answer.text);
      else toast(answer.text);
    }
  }

  async function poll() {
    if (state.chatId === null || state.userId === null) return;
    const seq = state.pollSeq;
    const request = ++state.requestSeq;
    const payload = await api("GET", `/sandbox/chats/${encodeURIComponent(state.chatId)}/messages`);
    if (seq !== state.pollSeq) return; // the user switched chats meanwhile
    if (request < state.appliedSeq) return; // a newer answer is already on screen
    state.appliedSeq = request;
    applyMessages(payload);
  }

  function schedulePoll(delay) {
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(async () => {
      try {
        await poll();
        banner("");
      } catch (err) {
        banner(`Cannot read the chat: ${err.message}. Retrying…`);
      }
      schedulePoll(POLL_MS);
    }, delay);
  }

  async function refreshDirectory() {
    try {
      await loadUsers();
      await loadChats();
    } catch (err) {
      banner(`Cannot reach the sandbox: ${err.message}. Retrying…`);
    }
    setTimeout(refreshDirectory, DIRECTORY_MS);
  }

  // ---------------------------------------------------------------- acting as the user

  function target() {
    const body = { user_id: state.userId };
    if (state.chatId !== null) body.chat_id = state.chatId;
    if (state.threadId !== null) body.message_thread_id = state.threadId;
    return body;
  }

  function reportError(err) {
    toast(err.message || String(err), true);
  }

  async function sendText(text) {
    if (state.userId === null || !text) return;
    try {
      await api("POST", "/sandbox/messages", { ...target(), text });
      state.stickToBottom = true;
      schedulePoll(0);
    } catch (err) {
      reportError(err);
    }
  }

  async function sendContact() {
    const user = state.users.find((u) => Number(u.id) === state.userId) || {};
    const contact = {
      phone_number: user.phone_number || `+1555${String(state.userId).slice(-7).padStart(7, "0")}`,
      first_name: user.first_name || "User",
      user_id: state.userId,
    };
    try {
      await api("POST", "/sandbox/messages", { ...target(), contact });
      state.stickToBottom = true;
      schedulePoll(0);
    } catch (err) {
      reportError(err);
    }
  }

  async function pressInline(message, button, node) {
    if (state.userId === null) return;
    node.classList.add("pending");
    try {
      const result = await api("POST", "/sandbox/press", {
        user_id: state.userId,
        chat_id: state.chatId,
        message_id: message.message_id,
        callback_data: button.callback_data,
      });
      if (result && result.callback_query_id) state.pressed.add(result.callback_query_id);
      schedulePoll(0);
    } catch (err) {
      reportError(err);
    } finally {
      node.classList.remove("pending");
    }
  }

  function updateSendButton() {
    const ready = state.userId !== null && state.chatId !== null;
    dom.send.disabled = !ready || (!dom.input.value.trim() && !state.photo);
    dom.input.disabled = !ready;
  }

  function autoGrow() {
    dom.input.style.height = "auto";
    dom.input.style.height = `${Math.min(dom.input.scrollHeight, 160)}px`;
  }

  function clearPhoto() {
    if (state.photo && state.photo.preview) URL.revokeObjectURL(state.photo.preview);
    state.photo = null;
    dom.photoInput.value = "";
    dom.attachment.hidden = true;
    dom.attachmentThumb.removeAttribute("src");
    updateSendButton();
  }

  dom.photoInput.addEventListener("change", () => {
    const file = dom.photoInput.files && dom.photoInput.files[0];
    if (!file) return;
    clearPhoto();
    const preview = URL.createObjectURL(file);
    state.photo = { file, preview };
    dom.attachmentThumb.src = preview;
    dom.attachmentName.textContent = file.name;
    dom.attachment.hidden = false;
    dom.input.placeholder = "Add a caption…";
    updateSendButton();
    dom.input.focus();
  });

  dom.attachmentRemove.addEventListener("click", clearPhoto);

  dom.input.addEventListener("input", () => {
    autoGrow();
    updateSendButton();
  });

  dom.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      dom.composer.requestSubmit();
    }
  });

  dom.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (dom.send.disabled) return;
    const text = dom.input.value;
    const photo = state.photo;
    dom.send.disabled = true;
    try {
      if (photo) {
        const form = new FormData();
        for (const [key, value] of Object.entries(target())) form.append(key, String(value));
        if (text.trim()) form.append("caption", text);
        form.append("photo", photo.file, photo.file.name);
        await api("POST", "/sandbox/messages", form);
        clearPhoto();
      } else {
        await api("POST", "/sandbox/messages", { ...target(), text });
      }
      dom.input.value = "";
      autoGrow();
      state.stickToBottom = true;
      schedulePoll(0);
    } catch (err) {
      reportError(err);
    } finally {
      updateSendButton();
      dom.input.focus();
    }
  });

  // ---------------------------------------------------------------- start

  async function start() {
    const wanted = readHash();
    try {
      await loadUsers();
    } catch (err) {
      banner(`Cannot reach the sandbox: ${err.message}. Retrying…`);
    }
    if (wanted.user !== null) {
      state.userId = wanted.user;
      dom.userSelect.value = String(wanted.user);
      try {
        await loadChats();
      } catch (err) {
        reportError(err);
      }
      if (wanted.chat !== null) {
        state.chatId = null;
        selectChat(wanted.chat);
      }
      if (wanted.thread !== null) {
        state.threadId = wanted.thread;
        renderChatHeader();
      }
    }
    updateSendButton();
    setTimeout(refreshDirectory, DIRECTORY_MS);
    schedulePoll(0);
  }

  start();
})();
