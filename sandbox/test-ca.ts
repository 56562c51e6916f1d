// A throwaway certificate authority for the sandbox: the secured chart repository, the OCI registry
// and the mTLS Temporal frontend all present certificates it signs, as a site's own CA would.
// openssl with argument arrays; P-256 keys (fast to make); valid for a few days only.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

export interface IssuedCert {
  cert: string;
  key: string;
}

export interface TestCa {
  /** PEM file of the CA certificate: what a client is told to trust. */
  caCert: string;
  /**
   * Issues a certificate for `name` (file names and CN). `hosts` go into the subject alternative
   * names (IPs and DNS names); server and client use are both allowed, so one cert can do either.
   */
  issue(name: string, hosts?: string[]): Promise<IssuedCert>;
}

const DAYS = '3';
const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Creates a CA in `dir` (kept there: stop() of the sandbox removes the directory). */
export async function createTestCa(dir: string, commonName = 'skoala-upgrade sandbox CA'): Promise<TestCa> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const caCert = join(root, 'ca.crt');
  const caKey = join(root, 'ca.key');
  await execa('openssl', [
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    caKey,
    '-out',
    caCert,
    '-days',
    DAYS,
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return {
    caCert,
    async issue(name, hosts = ['127.0.0.1', 'localhost']) {
      const key = join(root, `${name}.key`);
      const csr = join(root, `${name}.csr`);
      const cert = join(root, `${name}.crt`);
      const ext = join(root, `${name}.ext`);
      const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
      await writeFile(
        ext,
        [
          'basicConstraints=CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          `subjectAltName=${san}`,
          '',
        ].join('\n')
      );
      await execa('openssl', ['req', ...ecKey, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
      await execa('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caCert,
        '-CAkey',
        caKey,
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        DAYS,
        '-extfile',
        ext,
      ]);
      return { cert, key };
    },
  };
}
