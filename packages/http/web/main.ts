// Progressive enhancement only: every page works without this script.
import './style.css';

// "Copy" buttons next to the dependency lines.
for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-copy]')) {
  button.hidden = false;
  button.addEventListener('click', () => {
    const target = document.getElementById(button.dataset.copy ?? '');
    if (!target) return;
    void navigator.clipboard.writeText(target.textContent ?? '').then(() => {
      button.textContent = 'Copied';
      setTimeout(() => (button.textContent = 'Copy'), 1500);
    });
  });
}
